"""Printing answers for people (aligned tables) or programs (``--json``)."""

from __future__ import annotations

import json
import math
import numbers
import sys
from collections.abc import Sequence
from typing import Any


def print_json(payload: Any) -> None:
    """``payload`` as indented JSON on stdout (anything JSON lacks printed as ``str``)."""
    json.dump(_without_nan(payload), sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def _without_nan(value: Any) -> Any:
    """``value`` with every NaN float as ``None`` (JSON has no NaN: ``null`` is valid)."""
    if _is_nan(value):
        return None
    if isinstance(value, dict):
        return {k: _without_nan(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_without_nan(v) for v in value]
    return value


def print_table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]]) -> None:
    """Rows as an aligned text table; ``columns`` are (key, heading) pairs."""
    cells = [[_cell(row.get(key)) for key, _ in columns] for row in rows]
    headings = [heading for _, heading in columns]
    widths = [
        max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headings)
    ]
    print("  ".join(h.ljust(w) for h, w in zip(headings, widths, strict=True)).rstrip())
    print("  ".join("-" * w for w in widths))
    for r in cells:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


def print_metrics(title: str, metrics: dict[str, Any]) -> None:
    """``title``, then one indented ``name value`` line per metric.

    A metric that could not be computed (NaN) reads ``n/a``, followed by a line that
    says why; never ``nan``.
    """
    print(title)
    for key, value in metrics.items():
        print(f"  {key:<16} {_cell(value)}")
    if any(_is_nan(v) for v in metrics.values()):
        print(f"  (n/a: {_why_not_computed(metrics)})")


def _why_not_computed(metrics: dict[str, Any]) -> str:
    if metrics.get("users") == 0:
        return ("no test user to evaluate: none has both training ratings and a relevant "
                "test rating of a movie seen in training")
    if metrics.get("count") == 0:
        return "no test ratings"
    return "undefined on this test split"


def _is_nan(value: Any) -> bool:
    """NaN, as a Python or a NumPy float."""
    return isinstance(value, numbers.Real) and math.isnan(value)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if _is_nan(value):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 100 else f"{value:.1f}"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)
