"""Sphinx configuration: numpydoc API reference and a sphinx-gallery of examples."""

import os
import sys

sys.path.insert(0, os.path.abspath(".."))
import sktriplet  # noqa: E402

project = "sktriplet"
author = "The sktriplet developers"
copyright = "2026, The sktriplet developers"
release = version = sktriplet.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]
autosummary_generate = True
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
autodoc_default_options = {"members": True, "inherited-members": False}
autodoc_inherit_docstrings = False  # Keras writes its docstrings in Markdown
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py"]
templates_path = []

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "abort_on_example_error": True,
    "within_subsection_order": "FileNameSortKey",
}

html_theme = "pydata_sphinx_theme"
html_title = "sktriplet"
html_theme_options = {"navigation_with_keys": False}
html_static_path = []
