"""The candidate index saved beside a retrieval model: ``MODELS/retrieval/index/``.

Why a separate step (``movierec index build``): an HNSW graph over a million
candidates takes minutes to build and is only worth it for big catalogues, so
training never builds one; the :class:`~movierec.pipeline.Recommender` uses a saved
index when there is one and exact brute force otherwise.

The directory holds what :meth:`CandidateIndex.save` writes (``index.json``: kind,
settings, size) plus ``build.json``: a fingerprint of the candidate embeddings it was
built from, so an index left over from other embeddings is refused, not trusted.
Retraining replaces the whole retrieval directory, index included.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from movierec.atomic import atomic_directory
from movierec.errors import ModelError
from movierec.models.artifacts import SavedModel, read_candidates
from movierec.retrieval.index import MANIFEST, CandidateIndex, make_index

INDEX_DIR = "index"
BUILD_FILE = "build.json"


def candidate_matrix(saved: SavedModel) -> np.ndarray:
    """Saved candidate embeddings (float32), or the model's own when none were saved."""
    matrix = saved.candidates
    if matrix is None:
        matrix = saved.retriever.candidate_embeddings()
    return np.ascontiguousarray(matrix, dtype=np.float32)


def fingerprint(embeddings: np.ndarray) -> str:
    """Short hash of the candidate matrix: cheap next to loading it, and exact."""
    data = np.ascontiguousarray(embeddings, dtype=np.float32)
    digest = hashlib.sha256(str(data.shape).encode())
    digest.update(data.data.cast("B"))
    return digest.hexdigest()[:16]


def build_model_index(
    retrieval_dir: str | Path, kind: str, progress: bool | None = None, **settings: Any
) -> tuple[CandidateIndex, Path, float]:
    """Index the saved candidate embeddings of ``retrieval_dir``; save into ``index/``.

    Built in a staging directory and swapped in whole, so a crash or Ctrl-C never
    leaves a half-written index that the recommender would load.
    Returns the index, its directory and the build time in seconds.
    """
    retrieval_dir = Path(retrieval_dir)
    candidates, manifest = read_candidates(retrieval_dir)  # no ratings, no network
    candidates = np.ascontiguousarray(candidates, dtype=np.float32)
    if kind.startswith("faiss"):
        settings = {"progress": progress, **settings}
    index = make_index(kind, **settings)
    started = time.perf_counter()
    index.build(candidates)
    seconds = time.perf_counter() - started
    target = retrieval_dir / INDEX_DIR
    with atomic_directory(target) as staging:
        index.save(staging)
        build = {
            "kind": index.name,
            "settings": index.settings(),
            "candidates": fingerprint(candidates),
            "model_created": manifest.get("created"),
            "build_seconds": round(seconds, 3),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        (staging / BUILD_FILE).write_text(json.dumps(build, indent=2) + "\n")
    return index, target, seconds


def load_model_index(retrieval_dir: str | Path, candidates: np.ndarray) -> CandidateIndex | None:
    """The saved index of ``retrieval_dir`` (None when there is none), checked against
    the candidate embeddings the recommender holds."""
    root = Path(retrieval_dir) / INDEX_DIR
    if not (root / MANIFEST).is_file():
        return None
    try:
        build = json.loads((root / BUILD_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"{root}: unreadable {BUILD_FILE} ({exc}); rebuild the index") from None
    if build.get("candidates") != fingerprint(candidates):
        raise ModelError(
            f"{root} was built from other candidate embeddings; "
            "rebuild it with `movierec index build` or delete it"
        )
    return CandidateIndex.load(root)
