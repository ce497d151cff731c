"""What every benchmark script shares: a plain-text table and an atomically written JSON."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from movierec import atomic


def table(rows: list[list[Any]], header: list[str]) -> str:
    """Right-aligned columns under a dashed rule; floats to 3 significant digits."""
    cells = [[f"{c:.3g}" if isinstance(c, float) else str(c) for c in r] for r in [header, *rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write_json(path: Path, payload: Any) -> None:
    """Write ``payload`` to ``path`` through a temporary name: a result file is whole or absent."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_json(path, payload, indent=2, default=str)


def refuse_other_ratings(path: Path, earlier: dict[str, Any], data: dict[str, Any]) -> None:
    """Exit unless the results in ``path`` (their ``data`` block ``earlier``) were measured
    on the ratings described by ``data`` (``Dataset.describe()``): the ``--only`` reruns
    merge new rows into an old file. Compared by content digest, or by name and count
    for files written before digests were recorded."""
    same = ("ratings_digest",) if "ratings_digest" in earlier else ("name", "ratings")
    if any(earlier.get(key) != data.get(key) for key in same):
        sys.exit(f"--only: {path} was measured on other ratings")
