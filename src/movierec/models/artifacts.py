"""A trained model on disk: one self-contained, atomically written directory.

Layout of ``DIR`` (one per model; ``movierec train`` writes ``MODELS/retrieval``
and ``MODELS/ranking``)::

    manifest.json        what it is and where it came from (data, split, settings,
                         metrics, versions): enough to reproduce or audit it
    model.keras          the Keras network (plus any model-specific files)
    users.json           user vocabulary (raw ids, index = position + 1)
    movies.json          movie vocabulary
    catalogue.parquet    movies table (titles, years, genres) for output
    users.parquet        user features, when the source has them
    train.parquet        the training ratings: histories and watched movies
    candidates.npy       retrieval only: candidate embeddings (keras-rs does
                         not save BruteForceRetrieval's candidates)
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import movierec
from movierec.data.schema import Dataset
from movierec.data.training import TrainingSet
from movierec.data.vocab import Vocabulary
from movierec.errors import ModelError
from movierec.models.base import Ranker, RecommenderModel, Retriever
from movierec.models.registry import model_class

MANIFEST = "manifest.json"
FORMAT_VERSION = 1


@dataclass
class SavedModel:
    """A model loaded back with the training set it needs and its manifest."""

    model: RecommenderModel
    train: TrainingSet
    manifest: dict[str, Any]
    candidates: np.ndarray | None = None
    directory: Path | None = None

    @property
    def retriever(self) -> Retriever:
        if not isinstance(self.model, Retriever):
            raise ModelError(f"{self.directory} holds a {self.model.kind} model, not retrieval")
        return self.model

    @property
    def ranker(self) -> Ranker:
        if not isinstance(self.model, Ranker):
            raise ModelError(f"{self.directory} holds a {self.model.kind} model, not ranking")
        return self.model


def versions() -> dict[str, str]:
    import jax
    import keras
    import keras_rs

    return {
        "movierec": movierec.__version__,
        "keras": keras.__version__,
        "keras_rs": keras_rs.__version__,
        "jax": jax.__version__,
        "backend": keras.backend.backend(),
        "python": platform.python_version(),
    }


def save_model(
    model: RecommenderModel,
    train: TrainingSet,
    directory: str | Path,
    *,
    split: dict[str, Any],
    metrics: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` to ``directory`` atomically: all files land, or none do."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        model.save(staging)
        _write_json(staging / "users.json", train.users.to_json())
        _write_json(staging / "movies.json", train.movies.to_json())
        train.dataset.movies.to_parquet(staging / "catalogue.parquet", index=False)
        if train.dataset.users is not None:
            train.dataset.users.to_parquet(staging / "users.parquet", index=False)
        train.write_ratings(staging / "train.parquet")
        if isinstance(model, Retriever):
            np.save(staging / "candidates.npy", model.candidate_embeddings())
        manifest = {
            "format": FORMAT_VERSION,
            "kind": model.kind,
            "model": model.name,
            "settings": model.settings,
            "data": train.describe(),
            "rating_scale": list(train.dataset.rating_scale),
            "split": split,
            "metrics": metrics or {},
            "versions": versions(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **(extra or {}),
        }
        _write_json(staging / MANIFEST, manifest)
        replace_directory(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return directory


def read_manifest(directory: str | Path) -> dict[str, Any]:
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise ModelError(
            f"no trained model in {directory} (missing {MANIFEST}); run `movierec train` first"
        )
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ModelError(f"{path} is unreadable: {error}") from error
    if manifest.get("format") != FORMAT_VERSION:
        raise ModelError(f"{path}: unsupported model format {manifest.get('format')!r}")
    return manifest


def load_model(directory: str | Path) -> SavedModel:
    """Load a directory written by :func:`save_model`."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    try:
        movies = pd.read_parquet(directory / "catalogue.parquet")
        users_path = directory / "users.parquet"
        users = pd.read_parquet(users_path) if users_path.exists() else None
        ratings = pd.read_parquet(directory / "train.parquet")
        dataset = Dataset(
            name=manifest["data"].get("name", "unknown"),
            ratings=ratings,
            movies=movies,
            users=users,
            rating_scale=tuple(manifest.get("rating_scale", (1.0, 5.0))),
            source=manifest["data"].get("source", {}),
        )
        train = TrainingSet.build(
            dataset,
            ratings,
            users=Vocabulary.from_json(json.loads((directory / "users.json").read_text())),
            movies=Vocabulary.from_json(json.loads((directory / "movies.json").read_text())),
        )
        cls = model_class(manifest["kind"], manifest["model"])
        model = cls.load(directory, manifest["settings"], train)
        candidates_path = directory / "candidates.npy"
        candidates = np.load(candidates_path) if candidates_path.exists() else None
    except (OSError, KeyError, ValueError) as error:
        raise ModelError(f"{directory}: incomplete or damaged model ({error})") from error
    return SavedModel(model, train, manifest, candidates, directory)


def _write_json(path: Path, payload: Any) -> None:
    path.write_text(json.dumps(payload, indent=2, sort_keys=True, default=_jsonable) + "\n")


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (Path, tuple)):
        return str(value) if isinstance(value, Path) else list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def replace_directory(staging: Path, target: Path) -> None:
    """Swap ``staging`` into place; an existing ``target`` is removed only after."""
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, old)
        os.replace(staging, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, target)
