"""Tuning the process for serving: only ``movierec serve`` asks for it."""

from __future__ import annotations

import gc

from threadpoolctl import threadpool_info, threadpool_limits

from movierec.pipeline import Recommender
from movierec.serving.process import tune_process_for_serving


def _pools() -> list[dict]:
    return [p for p in threadpool_info() if p["user_api"] in ("blas", "openmp")]


def test_a_library_load_leaves_the_process_alone_and_serving_tunes_it(example_models):
    """Loading pins nothing; tuning pins BLAS/OpenMP to one thread and freezes the heap
    (serving answers one query at a time)."""
    models, _ = example_models
    before = [p["num_threads"] for p in _pools()]
    frozen = gc.get_freeze_count()
    Recommender.load(models)
    assert [p["num_threads"] for p in _pools()] == before
    assert gc.get_freeze_count() == frozen
    try:
        tune_process_for_serving()
        assert _pools() and all(p["num_threads"] == 1 for p in _pools())
        assert gc.get_freeze_count() > frozen
    finally:
        gc.unfreeze()
        threadpool_limits(max(before) if before else None)
