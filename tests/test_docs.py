"""The documentation builds without warnings, running every gallery example."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sphinx")
pytest.importorskip("sphinx_gallery")

ROOT = Path(__file__).resolve().parents[1]


def test_docs_build_without_warnings_and_gallery_makes_figures(tmp_path):
    docs = tmp_path / "docs"
    shutil.copytree(
        ROOT / "docs",
        docs,
        ignore=shutil.ignore_patterns("_build", "auto_examples", "generated"),
    )
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    env = dict(
        os.environ,
        SKTRIPLET_EXAMPLE_EPOCHS="2",
        MPLBACKEND="Agg",
        TF_CPP_MIN_LOG_LEVEL="3",
    )
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "html",
            str(docs),
            str(tmp_path / "html"),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    html = tmp_path / "html"
    for example in sorted((ROOT / "examples").glob("plot_*.py")):
        page = html / "auto_examples" / f"{example.stem}.html"
        assert page.exists(), example.name
        figures = list((html / "_images").glob(f"sphx_glr_{example.stem}_*.png"))
        assert figures, f"{example.name} made no figure"
    assert (
        "TripletEmbedder"
        in (html / "generated" / "sktriplet.TripletEmbedder.html").read_text()
    )
