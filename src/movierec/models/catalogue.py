"""Title search over a saved model's catalogue with the standard library alone.

``movierec search`` answers from ``catalogue.json`` (written beside every saved
model) without NumPy, pandas or Keras, so a title lookup costs little more than
starting Python. Models saved before it existed fall back to ``catalogue.parquet``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from movierec.atomic import write_text

CATALOGUE_JSON = "catalogue.json"


def write_catalogue_json(movies: Any, path: Path) -> None:
    """``movies`` (a DataFrame with movie_id, title, year, genres) as compact JSON rows."""
    import pandas as pd

    rows = [
        [str(movie), str(title), None if pd.isna(year) else int(year), [str(g) for g in genres]]
        for movie, title, year, genres in movies[["movie_id", "title", "year", "genres"]]
        .astype(object)
        .itertuples(index=False, name=None)
    ]
    write_text(path, json.dumps(rows, separators=(",", ":")))


def matches(title: str, words: list[str]) -> bool:
    """Whether ``title`` contains every (lower-case) word, as :meth:`Recommender.search`."""
    lowered = title.lower()
    return all(word in lowered for word in words)


def _as_trained(model_dir: Path, raw: bytes) -> bool:
    """Whether ``raw`` is the catalogue.json the manifest lists (SHA-256), as every
    other artifact is checked on load; anything else takes the fully checked path."""
    import hashlib

    try:
        manifest = json.loads((Path(model_dir) / "manifest.json").read_text())
        expected = manifest["artifacts"][CATALOGUE_JSON]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return hashlib.sha256(raw).hexdigest() == expected


def search_saved(model_dir: Path, query: str, limit: int) -> list[dict[str, Any]]:
    """Movies of the model in ``model_dir`` whose title contains every word of ``query``,
    in catalogue order, at most ``limit``."""
    words = query.lower().split()
    path = Path(model_dir) / CATALOGUE_JSON
    if path.is_file():
        try:
            raw = path.read_bytes()
            rows = json.loads(raw) if _as_trained(model_dir, raw) else None
        except (OSError, ValueError):
            rows = None
        if isinstance(rows, list):
            found = []
            for movie, title, year, genres in rows:
                if matches(title, words):
                    found.append(
                        {"movie_id": movie, "title": title, "year": year, "genres": genres}
                    )
                    if len(found) >= limit:
                        break
            return found
    from movierec.pipeline import Recommender

    return [r.to_dict() for r in Recommender.load(Path(model_dir).parent).search(query, limit)]
