"""Benchmark output: the columns of a result row, and the tables that print
rows, with sktriplet's ratio to the best peer (``run.py``, ``images.py``,
``more_data.py``)."""

from __future__ import annotations

import numpy as np
from peers import NEURAL

COLUMNS = [
    "fit s",
    "second fit s",
    "1-NN acc",
    "5-NN acc",
    "MAP@R",
    "transform-all s",
    "one-row ms",
]
HIGHER_IS_BETTER = {"1-NN acc", "5-NN acc", "MAP@R"}
LOAD = "other load"  # share of the CPUs other processes took during the fit


def holds_figures(row: dict) -> bool:
    """Whether a row holds figures: not a failure, not skipped."""
    return "failure" not in row and "skipped" not in row


def measured(rows: dict) -> dict:
    """The rows that hold figures."""
    return {m: r for m, r in rows.items() if holds_figures(r)}


def mean_row(runs: list) -> dict:
    """One row from the runs of several random states: the mean of each column,
    or the first failure."""
    failed = [r for r in runs if not holds_figures(r)]
    if failed:
        return failed[0]
    row = dict(runs[0])
    for column in [*COLUMNS, LOAD]:
        values = [r.get(column) for r in runs]
        if all(v is not None for v in values):
            row[column] = float(np.mean(values))
    return row


SPREAD_COLUMNS = ["fit s", "second fit s", "1-NN acc", "MAP@R"]


def print_spread(runs: dict) -> None:
    """Mean and standard deviation over the random states, per method."""
    n = max(len(r) for r in runs.values())
    print(f"\nmean ± standard deviation over {n} random states:\n")
    print("| method | " + " | ".join(SPREAD_COLUMNS) + " |")
    print("|---" * (len(SPREAD_COLUMNS) + 1) + "|")
    for method_name, method_runs in runs.items():
        if not all(holds_figures(r) for r in method_runs):
            continue
        cells = []
        for column in SPREAD_COLUMNS:
            values = [r.get(column) for r in method_runs]
            if any(v is None for v in values):
                cells.append("")
                continue
            digits = 3 if column in HIGHER_IS_BETTER else 2
            cells.append(f"{np.mean(values):.{digits}f} ± {np.std(values):.{digits}f}")
        print(f"| {method_name} | " + " | ".join(cells) + " |")


def _cell(row: dict, column: str) -> str:
    value = row.get(column)
    if value is None:
        return ""
    if column == LOAD:
        return f"{value:.0%}"
    return f"{value:.3f}" if column in HIGHER_IS_BETTER else f"{value:.3g}"


def print_table(name: str, rows: dict) -> None:
    """The rows of one data set, then sktriplet's ratio to the best peer.

    A row may instead hold a ``failure`` (a crash, a time-out, an exception) or
    ``skipped``: it is printed as such and left out of the ratios.
    """
    columns = [*COLUMNS, LOAD] if any(LOAD in r for r in rows.values()) else COLUMNS
    print(f"\n## {name}\n")
    print("| method | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for method_name, r in rows.items():
        if method_name not in measured(rows):
            note = r.get("failure") or f"skipped: {r['skipped']}"
            print(f"| {method_name} | {note} |" + " |" * (len(columns) - 1))
            continue
        cells = [_cell(r, c) for c in columns]
        print(f"| {method_name} | " + " | ".join(cells) + " |")
    rows = measured(rows)
    if "sktriplet" not in rows:
        return
    ours = rows["sktriplet"]
    peers = {m: r for m, r in rows.items() if m != "sktriplet"}
    ratios = []
    for c in COLUMNS:
        # Fit time is compared with the neural peers (the others train no
        # network), and no time with raw features, which do nothing.
        if c in ("fit s", "second fit s"):
            pool = {m: r for m, r in peers.items() if m in NEURAL}
        elif c in HIGHER_IS_BETTER:
            pool = peers
        else:
            pool = {m: r for m, r in peers.items() if m != "raw"}
        pool = {m: r for m, r in pool.items() if r.get(c) is not None}
        if not pool or ours.get(c) is None:
            ratios.append("n/a")
            continue
        pick = max if c in HIGHER_IS_BETTER else min
        best = pick(pool, key=lambda m: pool[m][c])
        ratios.append(f"{ours[c] / max(pool[best][c], 1e-12):.3f} ({best})")
    ratios += [""] * (len(columns) - len(COLUMNS))  # no ratio of the load
    print("| **sktriplet / best peer** | " + " | ".join(ratios) + " |")


def print_versions(rows: dict) -> None:
    print("\nversions per row:")
    for name, r in rows.items():
        versions = ", ".join(f"{k} {v}" for k, v in r.get("versions", {}).items())
        print(f"- {name}: {versions}")
