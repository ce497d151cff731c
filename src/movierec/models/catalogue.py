"""Title search over a saved model's catalogue with the standard library alone.

``movierec search`` answers from ``catalogue.json`` (written beside every saved
model) without NumPy, pandas or Keras, so a title lookup costs little more than
starting Python. Models saved before it existed fall back to ``catalogue.parquet``,
read with pandas; neither path loads the model. Each file is read only when it is
what the manifest lists (:mod:`movierec.models.manifest`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from movierec.atomic import write_text
from movierec.errors import ModelError
from movierec.models.manifest import read_manifest, verify_artifacts

CATALOGUE_JSON = "catalogue.json"
#: The movies table of a saved model (written by :mod:`movierec.models.artifacts`).
CATALOGUE_PARQUET = "catalogue.parquet"

#: One catalogue row: movie id, title, year (or None), genres.
Row = tuple[str, str, int | None, list[str]]


def catalogue_rows(movies: Any) -> list[Row]:
    """``movies`` (a DataFrame with movie_id, title, year, genres) as plain rows."""
    import pandas as pd

    return [
        (str(movie), str(title), None if pd.isna(year) else int(year), [str(g) for g in genres])
        for movie, title, year, genres in movies[["movie_id", "title", "year", "genres"]]
        .astype(object)
        .itertuples(index=False, name=None)
    ]


def write_catalogue_json(movies: Any, path: Path) -> None:
    """``movies`` (a DataFrame with movie_id, title, year, genres) as compact JSON rows."""
    write_text(path, json.dumps(catalogue_rows(movies), separators=(",", ":")))


def matches(title: str, words: list[str]) -> bool:
    """Whether ``title`` contains every (lower-case) word, as :meth:`Recommender.search`."""
    lowered = title.lower()
    return all(word in lowered for word in words)


def search_saved(model_dir: Path, query: str, limit: int) -> list[dict[str, Any]]:
    """Movies of the model in ``model_dir`` whose title contains every word of ``query``,
    in catalogue order, at most ``limit``.

    Raises:
        ModelError: If the manifest is missing or unreadable, or the catalogue file is
            missing or not the one the manifest lists.
    """
    model_dir = Path(model_dir)
    manifest = read_manifest(model_dir)
    listed = manifest.get("artifacts") or {}
    name = CATALOGUE_JSON if CATALOGUE_JSON in listed else CATALOGUE_PARQUET
    verify_artifacts(model_dir, manifest, only=[name])
    words = query.lower().split()
    found = []
    for movie, title, year, genres in _read_rows(model_dir / name):
        if matches(title, words):
            found.append({"movie_id": movie, "title": title, "year": year, "genres": genres})
            if len(found) >= limit:
                break
    return found


def _read_rows(path: Path) -> list[Row]:
    """The rows of a checked ``catalogue.json`` or (older models) ``catalogue.parquet``."""
    try:
        if path.name == CATALOGUE_JSON:
            return [(str(m), str(t), y, list(g)) for m, t, y, g in json.loads(path.read_bytes())]
        import pandas as pd

        return catalogue_rows(pd.read_parquet(path))
    except (OSError, ValueError, TypeError) as error:
        raise ModelError(f"{path}: unreadable ({error}); train the model again") from error
