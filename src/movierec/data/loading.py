"""One entry point, :func:`load_dataset`, that recognises a source by its file names."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from movierec.data.grouplens import load_ml1m, load_ml100k, load_ml_latest
from movierec.data.parquet_format import META_FILE, load_parquet_dataset
from movierec.data.recbole import fetch_ml100k, find_atomic_files, load_recbole
from movierec.data.schema import Dataset
from movierec.errors import DataError

DEFAULT_SOURCE = "ml-100k"

Loader = Callable[..., Dataset]

# (files that must all be present, loader), tried in order.
FORMATS: list[tuple[str, tuple[str, ...], Loader]] = [
    ("GroupLens ml-100k", ("u.data", "u.item"), load_ml100k),
    ("GroupLens ml-1m / ml-10m", ("ratings.dat", "movies.dat"), load_ml1m),
    ("GroupLens ml-latest / ml-25m", ("ratings.csv", "movies.csv"), load_ml_latest),
]


def detect_format(directory: Path) -> Loader | None:
    """The loader for the files in ``directory``, or None if none is recognised."""
    for _, files, loader in FORMATS:
        if all((directory / f).is_file() for f in files):
            return loader
    if find_atomic_files(directory) is not None:
        return load_recbole
    if (directory / META_FILE).is_file() and any(directory.glob("ratings-*.parquet")):
        return load_parquet_dataset  # written by `movierec data synth` / write_parquet_shards
    return None


#: ``Dataset.source`` key: what to give :func:`load_dataset` to load the same data again
#: (``"ml-100k"`` or an absolute directory); a saved model's ``data_source``.
LOADED_FROM = "loaded_from"


def load_dataset(source: str | Path = DEFAULT_SOURCE) -> Dataset:
    """Load ``"ml-100k"`` (the RecBole copy, fetched on first use) or a directory of files.

    A directory whose files are not recognised, but which holds exactly one
    recognisable sub-directory (an archive unpacked one level up), is accepted too.
    """
    if str(source) == DEFAULT_SOURCE and not Path(source).is_dir():
        dataset = load_recbole(fetch_ml100k(), name=DEFAULT_SOURCE)
        dataset.source[LOADED_FROM] = DEFAULT_SOURCE
        return dataset
    directory = Path(source).expanduser()
    if not directory.exists():
        raise DataError(
            f"no such file or directory (give a directory of MovieLens files, "
            f"or {DEFAULT_SOURCE!r})",
            path=directory,
        )
    if not directory.is_dir():
        raise DataError("expected a directory of MovieLens files, got a file", path=directory)
    loader = detect_format(directory)
    if loader is None:
        inner = [d for d in sorted(directory.iterdir()) if d.is_dir() and detect_format(d)]
        if len(inner) == 1:
            directory, loader = inner[0], detect_format(inner[0])
    if loader is None:
        expected = "; ".join(f"{label}: {' + '.join(files)}" for label, files, _ in FORMATS)
        raise DataError(
            f"no recognisable MovieLens files. Expected one of {expected}; "
            "RecBole: <name>.inter + <name>.item; movierec Parquet: meta.json + ratings-*.parquet",
            path=directory,
        )
    dataset = loader(directory)
    dataset.source[LOADED_FROM] = str(Path(source).expanduser().resolve())
    return dataset
