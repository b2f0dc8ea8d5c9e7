"""Reading the tables of a bench.md back, for the bench tests."""

from __future__ import annotations

import math
import re


def table(md: str, heading: str) -> list[list[str]]:
    """The body rows (cells) of the first markdown table after the '### ' line starting with ``heading``."""
    lines = md.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"### {heading}"))
    rows, seen = [], False
    for line in lines[start + 1:]:
        if line.startswith("|"):
            seen = True
            if not line.startswith("|---") and not line.startswith("| model"):
                rows.append([c.strip() for c in line.strip("|").split("|")])
        elif seen or line.startswith("### "):
            break
    return rows


def numbers(cell: str) -> list[float]:
    """Every number in a cell ('36.50 / 34.38' -> [36.5, 34.38]); NaN or inf text fails the test."""
    assert not re.search(r"nan|inf", cell, re.I), cell
    return [float(x) for x in re.findall(r"-?\d+\.\d+", cell)]


def finite(*values) -> bool:
    return all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)
