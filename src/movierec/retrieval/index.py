"""Candidate indexes: top-k movies by inner product with a query embedding.

Why an interface: exact scoring is simplest and fast enough on moderate catalogues,
while an approximate (HNSW) index keeps single-query latency flat on bigger ones; the
retriever, evaluation and the service only see :class:`CandidateIndex`.

Conventions shared by every implementation:

- Rows of the embedding matrix are candidate indices; row 0 is the unknown-movie
  slot and is never returned. ``ids`` (optional, int32) renames rows in results.
- ``search`` returns ``(scores, indices)``, both ``(q, k)``, highest score first
  (float32 / int32). ``exclude[i]`` lists results (indices, or ids when given) never
  to return for query ``i``. When fewer than ``k`` candidates remain (small catalogue,
  long exclusions, or an approximate index running dry) the tail of a row holds
  index -1 and score -inf, as in :func:`movierec.retrieval.topk.top_k`.
- ``save(dir)`` / ``CandidateIndex.load(dir)``: an ``index.json`` manifest plus data
  files, each written to a temporary name and renamed; the manifest comes last.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from movierec.atomic import atomic_file, write_text
from movierec.errors import ModelError, MovierecError
from movierec.extras import require
from movierec.retrieval.topk import top_k

MANIFEST = "index.json"
IDS_FILE = "ids.npy"
OOV_ROW = 0


class CandidateIndex(ABC):
    """Top-k inner-product search over candidate embeddings (see the module doc)."""

    name: ClassVar[str] = ""

    def __init__(self) -> None:
        self.dim = 0
        self.size = 0
        self.ids: np.ndarray | None = None
        self._sorted_ids: np.ndarray | None = None
        self._id_rows: np.ndarray | None = None

    # -- public API ---------------------------------------------------------------------

    def build(self, embeddings: np.ndarray, ids: np.ndarray | None = None) -> CandidateIndex:
        """Index ``embeddings`` (n, d); returns self so ``make_index(...).build(e)`` chains."""
        emb = np.ascontiguousarray(embeddings, dtype=np.float32)
        if emb.ndim != 2 or emb.shape[0] < 2 or emb.shape[1] < 1:
            raise MovierecError(
                "candidate embeddings must be a 2-D array with row 0 (unknown movie) "
                f"and at least one real candidate, got shape {emb.shape}"
            )
        if not np.isfinite(emb).all():
            raise MovierecError("candidate embeddings contain NaN or infinite values")
        self.size, self.dim = emb.shape
        self._set_ids(ids)
        self._build(emb)
        return self

    def search(
        self, queries: np.ndarray, k: int, exclude: Sequence[np.ndarray] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` candidates per query row, highest inner product first."""
        if self.size == 0:
            raise ModelError(f"{self.name} index is empty: call build() or load() first")
        q = np.ascontiguousarray(queries, dtype=np.float32)
        if q.ndim == 1:
            q = q[None, :]
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise MovierecError(f"queries must have shape (q, {self.dim}), got {np.shape(queries)}")
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise MovierecError(f"k must be a positive integer, got {k!r}")
        if exclude is not None and len(exclude) != len(q):
            raise MovierecError(f"exclude needs one entry per query ({len(q)}), got {len(exclude)}")
        rows = None if exclude is None else [self._rows_of(e) for e in exclude]
        scores, found = self._search(q, int(k), rows)
        if self.ids is not None:
            found = np.where(found >= 0, self.ids[np.maximum(found, 0)], -1).astype(np.int32)
        return scores.astype(np.float32, copy=False), found.astype(np.int32, copy=False)

    def save(self, directory: str | Path) -> Path:
        """Write the index under ``directory`` (created); returns the directory."""
        if self.size == 0:
            raise ModelError("cannot save an index that was never built")
        root = Path(directory)
        root.mkdir(parents=True, exist_ok=True)
        if self.ids is not None:
            _save_npy(root / IDS_FILE, self.ids)
        self._save(root)
        manifest = {
            "kind": self.name,
            "size": self.size,
            "dim": self.dim,
            "has_ids": self.ids is not None,
            "settings": self.settings(),
        }
        write_text(root / MANIFEST, json.dumps(manifest, indent=2))
        return root

    @classmethod
    def load(cls, directory: str | Path) -> CandidateIndex:
        """Read an index saved by :meth:`save`, whatever its kind (or check it is ``cls``)."""
        root = Path(directory)
        try:
            manifest = json.loads((root / MANIFEST).read_text())
            kind = manifest["kind"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"{root}: not a saved candidate index ({exc})") from None
        index = make_index(kind, **manifest.get("settings", {}))
        if not isinstance(index, cls):
            raise ModelError(f"{root}: holds a {kind!r} index, not a {cls.__name__}")
        index.size, index.dim = int(manifest["size"]), int(manifest["dim"])
        if manifest.get("has_ids"):
            index._set_ids(_load_npy(root / IDS_FILE))
        index._load(root)
        return index

    def settings(self) -> dict[str, Any]:
        """Constructor arguments, stored in the manifest so ``load`` rebuilds the same."""
        return {}

    # -- for subclasses -----------------------------------------------------------------

    @abstractmethod
    def _build(self, embeddings: np.ndarray) -> None: ...

    @abstractmethod
    def _search(
        self, queries: np.ndarray, k: int, exclude: list[np.ndarray] | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Scores and row numbers; ``exclude`` holds row numbers; row 0 must be dropped."""

    @abstractmethod
    def _save(self, root: Path) -> None: ...

    @abstractmethod
    def _load(self, root: Path) -> None: ...

    # -- helpers --------------------------------------------------------------------------

    def _set_ids(self, ids: np.ndarray | None) -> None:
        if ids is None:
            self.ids = self._sorted_ids = self._id_rows = None
            return
        ids = np.asarray(ids)
        if ids.shape != (self.size,) or not np.issubdtype(ids.dtype, np.integer):
            raise MovierecError(f"ids must be {self.size} integers, one per embedding row")
        if len(np.unique(ids)) != len(ids) or ids.min() < 0 or ids.max() > np.iinfo(np.int32).max:
            raise MovierecError("ids must be distinct non-negative int32 values")
        self.ids = ids.astype(np.int32)
        self._id_rows = np.argsort(self.ids, kind="stable")
        self._sorted_ids = self.ids[self._id_rows]

    def _rows_of(self, excluded: np.ndarray) -> np.ndarray:
        """Row numbers of excluded results (ids mapped back to rows; unknown ones dropped)."""
        values = np.asarray(excluded, dtype=np.int64).ravel()
        if self._sorted_ids is None or self._id_rows is None:
            return values[(values >= 0) & (values < self.size)]
        pos = np.clip(np.searchsorted(self._sorted_ids, values), 0, self.size - 1)
        return self._id_rows[pos[self._sorted_ids[pos] == values]]


def compact(
    scores: np.ndarray, rows: np.ndarray, k: int, exclude: list[np.ndarray] | None
) -> tuple[np.ndarray, np.ndarray]:
    """First ``k`` over-fetched results per row that are real, not row 0 and not excluded.

    Indexes that cannot mask before ranking (the keras-rs layer, faiss) fetch more than
    ``k`` (see :func:`_fetch_size`) and are cut down here, keeping their order.

    Args:
        scores: (queries, fetched) scores, best first per row.
        rows: (queries, fetched) candidate rows; negative ones are missing results.
        k: Results to keep per row.
        exclude: Rows never to return, one array per query, or ``None``.

    Returns:
        ``(scores, rows)``, both (queries, k): float32 and int32, the tail of a row that
        runs out padded with -inf and -1.
    """
    valid = (rows > OOV_ROW) & np.isfinite(scores)
    if exclude is not None:
        for i, excluded in enumerate(exclude):
            if len(excluded):
                valid[i] &= ~np.isin(rows[i], excluded)
    order = np.argsort(~valid, axis=1, kind="stable")[:, :k]  # valid ones first, in order
    out_rows = np.take_along_axis(rows, order, axis=1)
    out_scores = np.take_along_axis(scores, order, axis=1).astype(np.float32)
    keep = np.take_along_axis(valid, order, axis=1)
    out_rows = np.where(keep, out_rows, -1)
    out_scores = np.where(keep, out_scores, -np.inf).astype(np.float32)
    if out_rows.shape[1] < k:
        pad = ((0, 0), (0, k - out_rows.shape[1]))
        out_rows = np.pad(out_rows, pad, constant_values=-1)
        out_scores = np.pad(out_scores, pad, constant_values=-np.inf)
    return out_scores, out_rows.astype(np.int32)


def _fetch_size(k: int, size: int, exclude: list[np.ndarray] | None) -> int:
    """Results to ask an index for so that ``k`` remain after dropping row 0 and exclusions."""
    longest = max((len(e) for e in exclude), default=0) if exclude is not None else 0
    return min(size, k + 1 + longest)


class BruteForceIndex(CandidateIndex):
    """Exact scores against every candidate.

    ``scorer="numpy"`` (default): one matmul per block of queries plus
    :func:`~movierec.retrieval.topk.top_k` (exclusions masked before ranking).
    ``scorer="keras"`` runs ``keras_rs.layers.BruteForceRetrieval`` (the reference,
    over-fetching ``k + 1 + len(exclude)`` and masking); both give the same results.
    NumPy is the default because it answers one query faster (the service's case);
    Keras wins on large batches of queries, where XLA's top_k beats argpartition
    (measurements: ``benchmarks/NOTES.md``).
    """

    name = "brute-force"
    _BLOCK = 1 << 24  # score-matrix entries per block of queries (64 MB of float32)

    def __init__(self, scorer: str = "numpy"):
        super().__init__()
        if scorer not in ("numpy", "keras"):
            raise MovierecError(f"unknown brute-force scorer {scorer!r} (numpy or keras)")
        self.scorer = scorer
        self.embeddings: np.ndarray | None = None
        self._layer: Any = None

    def settings(self) -> dict[str, Any]:
        """The scorer, for the manifest."""
        return {"scorer": self.scorer}

    def _build(self, embeddings: np.ndarray) -> None:
        self.embeddings = embeddings
        self._layer = None

    def _search(
        self, queries: np.ndarray, k: int, exclude: list[np.ndarray] | None
    ) -> tuple[np.ndarray, np.ndarray]:
        assert self.embeddings is not None
        if self.scorer == "keras":
            return self._search_keras(queries, k, exclude)
        step = max(1, self._BLOCK // self.size)
        parts = []
        for start in range(0, len(queries), step):
            block = queries[start : start + step]
            scores = block @ self.embeddings.T
            ex = None if exclude is None else exclude[start : start + step]
            parts.append(top_k(scores, k, ex, exclude_all=(OOV_ROW,)))
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def _search_keras(
        self, queries: np.ndarray, k: int, exclude: list[np.ndarray] | None
    ) -> tuple[np.ndarray, np.ndarray]:
        import keras
        import keras_rs

        if self._layer is None:
            self._layer = keras_rs.layers.BruteForceRetrieval(k=1, return_scores=True)
            self._layer.update_candidates(self.embeddings)
        self._layer.k = _fetch_size(k, self.size, exclude)
        scores, rows = self._layer(queries)
        return compact(
            keras.ops.convert_to_numpy(scores), keras.ops.convert_to_numpy(rows), k, exclude
        )

    def _save(self, root: Path) -> None:
        assert self.embeddings is not None
        _save_npy(root / "embeddings.npy", self.embeddings)

    def _load(self, root: Path) -> None:
        # keras-rs does not serialise candidates: they live in embeddings.npy and go back
        # into the layer through update_candidates when it is first used.
        self.embeddings = _load_npy(root / "embeddings.npy").astype(np.float32, copy=False)
        if self.embeddings.shape != (self.size, self.dim):
            raise ModelError(f"{root}: embeddings.npy does not match {MANIFEST}")


class FaissIndex(CandidateIndex):
    """Approximate inner-product search with faiss: HNSW (default) or IVF-Flat.

    HNSW settings: ``m`` (graph degree), ``ef_construction``, ``ef_search`` (raised to
    the fetch size when a query needs more). IVF: ``nlist`` (default 4*sqrt(n)), ``nprobe``.
    """

    def __init__(
        self,
        method: str = "hnsw",
        m: int = 32,
        ef_construction: int = 200,
        ef_search: int = 128,
        nlist: int | None = None,
        nprobe: int = 16,
        chunk_size: int = 20_000,
        progress: bool | None = None,
    ):
        super().__init__()
        if method not in ("hnsw", "ivf"):
            raise MovierecError(f"unknown faiss method {method!r} (hnsw or ivf)")
        self.method = method
        self.m, self.ef_construction, self.ef_search = m, ef_construction, ef_search
        self.nlist, self.nprobe = nlist, nprobe
        self.chunk_size, self.progress = chunk_size, progress
        self._index: Any = None

    @property
    def name(self) -> str:  # type: ignore[override]
        """``faiss-hnsw`` or ``faiss-ivf``, as ``movierec index build --kind`` names it."""
        return f"faiss-{self.method}"

    def settings(self) -> dict[str, Any]:
        """Constructor arguments for the manifest (``method`` is in the name; ``progress``
        is not kept)."""
        return {
            "m": self.m,
            "ef_construction": self.ef_construction,
            "ef_search": self.ef_search,
            "nlist": self.nlist,
            "nprobe": self.nprobe,
            "chunk_size": self.chunk_size,
        }

    def _build(self, embeddings: np.ndarray) -> None:
        faiss = require("faiss", "a faiss index")
        from tqdm.auto import tqdm

        n, d = embeddings.shape
        if self.method == "hnsw":
            index = faiss.IndexHNSWFlat(d, self.m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = self.ef_construction
        else:
            self.nlist = self.nlist or max(1, min(n // 39, int(4 * np.sqrt(n))))
            index = faiss.IndexIVFFlat(
                faiss.IndexFlatIP(d), d, self.nlist, faiss.METRIC_INNER_PRODUCT
            )
            sample = np.random.default_rng(0).permutation(n)[: max(self.nlist * 39, 10_000)]
            index.train(embeddings[np.sort(sample)])
        disable = None if self.progress is None else not self.progress  # None: only on a tty
        with tqdm(total=n, desc=f"{self.name} index", unit="vec", disable=disable) as bar:
            for start in range(0, n, self.chunk_size):
                chunk = embeddings[start : start + self.chunk_size]
                index.add(chunk)
                bar.update(len(chunk))
        self._index = index

    def _search(
        self, queries: np.ndarray, k: int, exclude: list[np.ndarray] | None
    ) -> tuple[np.ndarray, np.ndarray]:
        faiss = require("faiss", "a faiss index")

        fetch = _fetch_size(k, self.size, exclude)
        if self.method == "hnsw":
            params = faiss.SearchParametersHNSW(efSearch=max(self.ef_search, fetch))
        else:
            params = faiss.SearchParametersIVF(nprobe=min(self.nprobe, self._index.nlist))
        scores, rows = self._index.search(queries, fetch, params=params)
        return compact(scores, rows.astype(np.int64), k, exclude)

    def _save(self, root: Path) -> None:
        faiss = require("faiss", "a faiss index")

        with atomic_file(root / "index.faiss") as tmp:
            faiss.write_index(self._index, str(tmp))

    def _load(self, root: Path) -> None:
        faiss = require("faiss", "a faiss index")

        path = root / "index.faiss"
        if not path.is_file():
            raise ModelError(f"{path}: missing")
        self._index = faiss.read_index(str(path))
        if self._index.ntotal != self.size or self._index.d != self.dim:
            raise ModelError(f"{path}: does not match {MANIFEST}")


INDEX_KINDS = ("brute-force", "faiss-hnsw", "faiss-ivf")


def make_index(kind: str = "brute-force", **settings: Any) -> CandidateIndex:
    """An unbuilt index of ``kind`` (one of :data:`INDEX_KINDS`) with its settings."""
    try:
        if kind == "brute-force":
            return BruteForceIndex(**settings)
        if kind in ("faiss-hnsw", "faiss-ivf"):
            return FaissIndex(method=kind.split("-", 1)[1], **settings)
    except TypeError as exc:
        raise MovierecError(f"bad settings for a {kind} index: {exc}") from None
    raise MovierecError(f"unknown index kind {kind!r}; choose one of {', '.join(INDEX_KINDS)}")


def _save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_file(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, array)


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: cannot read ({exc})") from None
