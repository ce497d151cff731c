"""A trained model on disk: one self-contained, atomically written directory.

Layout of ``DIR`` (one per model; ``movierec train`` writes ``MODELS/retrieval``
and ``MODELS/ranking``)::

    manifest.json        what it is and where it came from (data, split, settings,
                         metrics, versions): enough to reproduce or audit it
    model.keras          the Keras network (plus any model-specific files)
    users.json           user vocabulary (raw ids, index = position + 1)
    movies.json          movie vocabulary
    catalogue.parquet    movies table (titles, years, genres) for output
    catalogue.json       the same for `movierec search`, readable without pandas
    users.parquet        user features, when the source has them
    train.parquet        the training ratings: histories and watched movies
    candidates.npy       retrieval only: candidate embeddings (keras-rs does
                         not save BruteForceRetrieval's candidates)
    user_queries.npy     retrieval: every training user's query embedding, and
    user_stars.npy       ranking: every training user's predicted stars for every
                         movie (each when it fits in EXPORT_MAX_VALUES floats), so a
                         known user's answer is a lookup and a dot product in NumPy,
                         without starting Keras

The manifest records the SHA-256 of every other file in the directory, and
:func:`load_model` refuses a directory where one is missing or differs (a
shuffled ``candidates.npy`` or an edited ``movies.json`` would otherwise load
silently and change every answer). :func:`stage_mismatch` says whether a
retrieval and a ranking model were trained on the same data and split.
"""

from __future__ import annotations

import json
import platform
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from movierec._version import __version__
from movierec.atomic import atomic_directory
from movierec.data.loading import LOADED_FROM
from movierec.data.schema import Dataset
from movierec.data.splits import ALL_RATINGS
from movierec.data.training import TrainingSet
from movierec.data.vocab import Vocabulary
from movierec.errors import ModelError
from movierec.models.base import QueryBatch, Ranker, RecommenderModel, Retriever
from movierec.models.catalogue import CATALOGUE_JSON, write_catalogue_json
from movierec.models.manifest import (
    FORMAT_VERSION,
    MANIFEST,
    artifact_digests,
    read_manifest,
    verify_artifacts,
)
from movierec.models.registry import model_class

if TYPE_CHECKING:
    from movierec.data.shards import ShardedTrainingSet

USER_QUERIES = "user_queries.npy"
USER_STARS = "user_stars.npy"
SIMILAR_QUERIES = "similar_queries.npy"
#: A retrieval model's candidate embeddings (row i: movie index i).
CANDIDATES = "candidates.npy"
SIMILAR_CANDIDATES = "similar_candidates.npy"
#: Largest exported table (float32 values; 2**26 is 256 MiB). ML-100K needs 1.6M-2.1M.
EXPORT_MAX_VALUES = 2**26
#: Users per chunk while exporting.
EXPORT_USERS = 256


class SavedModel:
    """A model loaded back with the training set it needs and its manifest.

    The network itself may be loaded on first use (``loader``): answers that the
    exported tables (``user_queries``, ``user_stars``) give never start Keras.
    """

    def __init__(
        self,
        model: RecommenderModel | None,
        train: TrainingSet,
        manifest: dict[str, Any],
        candidates: np.ndarray | None = None,
        directory: Path | None = None,
        *,
        loader: Callable[[], RecommenderModel] | None = None,
        user_queries: np.ndarray | None = None,
        user_stars: np.ndarray | None = None,
        similar: tuple[np.ndarray, np.ndarray] | None = None,
    ):
        if model is None and loader is None:
            raise ValueError("SavedModel needs a model or a loader")
        self._model = model
        self._loader = loader
        self._loading = threading.Lock()  # one read of the network, however many threads ask
        self.train = train
        self.manifest = manifest
        self.candidates = candidates
        self.directory = directory
        self.user_queries = user_queries
        self.user_stars = user_stars
        self.similar = similar

    @property
    def model(self) -> RecommenderModel:
        """The model, its network read from disk on first use."""
        if self._model is None:
            with self._loading:
                if self._model is None:
                    assert self._loader is not None
                    self._model = self._loader()
        return self._model

    @property
    def model_loaded(self) -> bool:
        """Whether the network has been read from disk yet."""
        return self._model is not None

    @property
    def retriever(self) -> Retriever:
        """The model as a retriever; :class:`ModelError` if it is a ranker."""
        if not isinstance(self.model, Retriever):
            raise ModelError(f"{self.directory} holds a {self.model.kind} model, not retrieval")
        return self.model

    @property
    def ranker(self) -> Ranker:
        """The model as a ranker; :class:`ModelError` if it is a retriever."""
        if not isinstance(self.model, Ranker):
            raise ModelError(f"{self.directory} holds a {self.model.kind} model, not ranking")
        return self.model


def versions() -> dict[str, str]:
    """Versions of movierec, Keras, keras-rs, JAX and Python and the Keras backend,
    recorded in every manifest."""
    import jax
    import keras
    import keras_rs

    return {
        "movierec": __version__,
        "keras": keras.__version__,
        "keras_rs": keras_rs.__version__,
        "jax": jax.__version__,
        "backend": keras.backend.backend(),
        "python": platform.python_version(),
    }


def save_model(
    model: RecommenderModel,
    train: TrainingSet | ShardedTrainingSet,
    directory: str | Path,
    *,
    split: dict[str, Any],
    metrics: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` to ``directory`` atomically: all files land, or none do.

    An existing model in ``directory`` is replaced only once the new one is complete.

    Args:
        model: The fitted model.
        train: The training set it was fitted on (vocabularies, catalogue, ratings).
        directory: Where the model goes (see the module doc for its layout).
        split: How the train/test split was made, for the manifest.
        metrics: Test metrics for the manifest.
        extra: More manifest entries (data source, devices, training time, ...).

    Returns:
        ``directory`` as a :class:`~pathlib.Path`.
    """
    directory = Path(directory)
    with atomic_directory(directory) as staging:
        model.save(staging)
        _write_json(staging / "users.json", train.users.to_json())
        _write_json(staging / "movies.json", train.movies.to_json())
        train.dataset.movies.to_parquet(staging / "catalogue.parquet", index=False)
        write_catalogue_json(train.dataset.movies, staging / CATALOGUE_JSON)
        if train.dataset.users is not None:
            train.dataset.users.to_parquet(staging / "users.parquet", index=False)
        train.write_ratings(staging / "train.parquet")
        if isinstance(model, Retriever):
            np.save(staging / CANDIDATES, model.candidate_embeddings())
        export_inference(model, train, staging)
        artifacts = artifact_digests(staging)
        extra = dict(extra or {})
        # Where the data came from, whoever saves: `evaluate` loads it back from here.
        extra["data_source"] = extra.get("data_source") or train.dataset.source.get(LOADED_FROM)
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
            **extra,
            "artifacts": artifacts,
        }
        _write_json(staging / MANIFEST, manifest)
    return directory


def export_inference(
    model: RecommenderModel, train: TrainingSet | ShardedTrainingSet, directory: Path
) -> None:
    """Write what answering a known user needs as NumPy tables (see the module doc).

    Row ``u`` is user index ``u`` with their whole training history, exactly what the
    model computes for them at query time; tables too large are skipped, and such
    models answer through the network.
    """
    if not isinstance(train, TrainingSet):
        return  # a set streamed from shards has no per-user query rows here: use the network
    users = train.users.size
    if isinstance(model, Retriever):
        similar_queries, similar_candidates = model.similar_vectors()
        if similar_queries.size + similar_candidates.size <= EXPORT_MAX_VALUES:
            np.save(directory / SIMILAR_QUERIES, similar_queries)
            np.save(directory / SIMILAR_CANDIDATES, similar_candidates)
        first = model.query_embeddings(QueryBatch.from_training(train, np.array([0])))
        if users * first.shape[1] > EXPORT_MAX_VALUES:
            return
        table = np.lib.format.open_memmap(
            directory / USER_QUERIES, mode="w+", dtype=np.float32, shape=(users, first.shape[1])
        )
        for begin in range(0, users, EXPORT_USERS):
            rows = np.arange(begin, min(begin + EXPORT_USERS, users), dtype=np.int32)
            table[rows] = model.query_embeddings(QueryBatch.from_training(train, rows))
        table.flush()
    elif isinstance(model, Ranker):
        movies = train.movies.size
        if users * movies > EXPORT_MAX_VALUES:
            return
        table = np.lib.format.open_memmap(
            directory / USER_STARS, mode="w+", dtype=np.float32, shape=(users, movies)
        )
        per_chunk = max(1, 4096 // movies)
        every_movie = np.arange(movies, dtype=np.int32)
        for begin in range(0, users, per_chunk):
            rows = np.arange(begin, min(begin + per_chunk, users), dtype=np.int32)
            pairs = np.repeat(np.arange(len(rows)), movies)
            queries = QueryBatch.from_training(train, rows).take(pairs)
            stars = model.predict(queries, np.tile(every_movie, len(rows)))
            table[rows] = stars.reshape(len(rows), movies)
        table.flush()


def read_candidates(directory: str | Path) -> tuple[np.ndarray, dict[str, Any]]:
    """The saved candidate embeddings of a retrieval model, without loading the model.

    Checks the manifest and every artifact's checksum as :func:`load_model` does, but
    reads neither the training ratings nor the network: what ``movierec index build``
    needs on a catalogue whose training log runs to gigabytes.

    Args:
        directory: A retrieval model directory written by :func:`save_model`.

    Returns:
        ``(candidates, manifest)``: the float32 matrix (row ``i`` is movie index
        ``i``) that :func:`save_model` wrote for every retriever, and the manifest.

    Raises:
        ModelError: A missing or damaged manifest or artifact, or a ranking model.
    """
    directory = Path(directory)
    manifest = read_manifest(directory)
    if manifest.get("kind") != "retrieval":
        raise ModelError(f"{directory}: a {manifest.get('kind')} model has no candidates")
    verify_artifacts(directory, manifest)
    path = directory / CANDIDATES
    try:
        return np.load(path), manifest
    except (OSError, ValueError) as error:
        raise ModelError(f"{path}: unreadable ({error}); train the model again") from error


# What must agree between a retrieval and a ranking model used together.
LINEAGE_DATA = ("name", "ratings", "users", "movies")


def lineage(manifest: dict[str, Any]) -> dict[str, Any]:
    """The data (name, sizes, source checksum) and split a model was trained on."""
    data = manifest.get("data", {})
    split = dict(manifest.get("split", {}))
    if split.get("method") == ALL_RATINGS and "holdout" in split:  # refitted after a held-out run
        holdout = split.pop("holdout")
        split = {**holdout, **split, "method": holdout["method"], "refitted on": "every rating"}
    return {
        **{f"data {key}": data.get(key) for key in LINEAGE_DATA},
        "data checksum": (data.get("source") or {}).get("ratings_sha256"),
        "data digest": data.get("ratings_digest"),
        **{f"split {key}": value for key, value in sorted(split.items())},
    }


def stage_mismatch(retrieval: dict[str, Any], ranking: dict[str, Any]) -> str | None:
    """None when two manifests share data and split, else what differs.

    A ranker trained on another split has seen the retriever's test ratings (and
    the other way round), so "watched" movies and scores no longer line up.
    """
    first, second = lineage(retrieval), lineage(ranking)
    differ = [
        f"{key}: {first.get(key)!r} vs {second.get(key)!r}"
        for key in sorted(set(first) | set(second))
        if first.get(key) != second.get(key)
    ]
    return "; ".join(differ) if differ else None


def load_model(directory: str | Path, *, lazy: bool = False) -> SavedModel:
    """Load a directory written by :func:`save_model`.

    ``lazy``: read the network (and start Keras) only when the model is first used.
    """
    directory = Path(directory)
    manifest = read_manifest(directory)
    verify_artifacts(directory, manifest)
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
        candidates_path = directory / CANDIDATES
        candidates = np.load(candidates_path) if candidates_path.exists() else None
        user_queries = _table(directory / USER_QUERIES, train)
        user_stars = _table(directory / USER_STARS, train)
        similar = _similar_tables(directory, train)
    except (OSError, KeyError, ValueError) as error:
        raise ModelError(f"{directory}: incomplete or damaged model ({error})") from error

    def read_network() -> RecommenderModel:
        try:
            cls = model_class(manifest["kind"], manifest["model"])
            return cls.load(directory, manifest["settings"], train)
        except (OSError, KeyError, ValueError) as error:
            raise ModelError(f"{directory}: incomplete or damaged model ({error})") from error

    model = None if lazy else read_network()
    return SavedModel(
        model,
        train,
        manifest,
        candidates,
        directory,
        loader=read_network,
        user_queries=user_queries,
        user_stars=user_stars,
        similar=similar,
    )


def _table(path: Path, train: TrainingSet) -> np.ndarray | None:
    """An exported table, memory-mapped, if present and shaped for this training set."""
    if not path.is_file():
        return None
    table = np.load(path, mmap_mode="r")
    if table.ndim != 2 or table.shape[0] != train.users.size:
        raise ModelError(f"{path}: has {table.shape[0]} rows for {train.users.size} users")
    if path.name == USER_STARS and table.shape[1] != train.movies.size:
        raise ModelError(f"{path}: has {table.shape[1]} columns for {train.movies.size} movies")
    return table


def _similar_tables(directory: Path, train: TrainingSet) -> tuple[np.ndarray, np.ndarray] | None:
    """The exported ``similar_vectors`` pair, memory-mapped, if present."""
    paths = directory / SIMILAR_QUERIES, directory / SIMILAR_CANDIDATES
    if not all(p.is_file() for p in paths):
        return None
    queries, candidates = (np.load(p, mmap_mode="r") for p in paths)
    if len(queries) != train.movies.size or len(candidates) != train.movies.size:
        raise ModelError(f"{paths[0]}: has {len(queries)} rows for {train.movies.size} movies")
    return queries, candidates


def _write_json(path: Path, payload: Any) -> None:
    path.write_text(json.dumps(payload, indent=2, sort_keys=True, default=_jsonable) + "\n")


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (Path, tuple)):
        return str(value) if isinstance(value, Path) else list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
