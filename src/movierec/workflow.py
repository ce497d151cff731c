"""Train, evaluate and save a model in one step: what `movierec train` runs.

Kept apart from the command line so the benchmark and tests call the very same
code path that users do.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from movierec.data.schema import Dataset
from movierec.data.training import TrainingSet
from movierec.distributed import check_batch_size, check_devices, data_parallel, trim_to_multiple
from movierec.evaluation.evaluate import evaluate_ranker, evaluate_retriever
from movierec.models.artifacts import save_model
from movierec.models.base import Ranker, RecommenderModel, Retriever
from movierec.models.registry import model_class


@dataclass
class TrainResult:
    model: RecommenderModel
    train: TrainingSet
    metrics: dict[str, Any]
    seconds: float
    directory: Path | None = None


def evaluate_model(model: RecommenderModel, train: TrainingSet, test) -> dict[str, Any]:
    """The metrics movierec reports for a model of either kind on a test split."""
    if isinstance(model, Ranker):
        return evaluate_ranker(model, train, test)
    assert isinstance(model, Retriever)
    return evaluate_retriever(model, train, test, ks=(10, 100))


def train_model(
    kind: str,
    name: str,
    dataset: Dataset,
    train_ratings,
    test_ratings=None,
    *,
    settings: dict[str, Any] | None = None,
    split_info: dict[str, Any] | None = None,
    out_dir: str | Path | None = None,
    data_source: str | None = None,
    verbose: int = 1,
    devices: int = 1,
) -> TrainResult:
    """Fit ``kind``/``name`` on ``train_ratings``; evaluate on ``test_ratings``; maybe save.

    ``devices > 1`` trains data-parallel (see :mod:`movierec.distributed`); evaluation
    and saving then run on one device.
    """
    model_cls = model_class(kind, name)
    check_batch_size({**model_cls.default_settings(), **(settings or {})}, devices)
    check_devices(devices)
    if devices > 1:
        train_ratings = trim_to_multiple(train_ratings, devices)
    with data_parallel(devices):
        model = model_cls(**(settings or {}))
        train = TrainingSet.build(dataset, train_ratings)
        started = time.perf_counter()
        history = model.fit(train, verbose=verbose)
        seconds = time.perf_counter() - started
    metrics: dict[str, Any] = {}
    if test_ratings is not None and len(test_ratings):
        metrics = evaluate_model(model, train, test_ratings)
    result = TrainResult(model, train, metrics, seconds)
    if out_dir is not None:
        result.directory = save_model(
            model,
            train,
            out_dir,
            split=split_info or {},
            metrics=metrics,
            extra={
                "data_source": data_source,
                "training_seconds": round(seconds, 2),
                "devices": devices,
                "history": {k: [float(v) for v in vs] for k, vs in (history or {}).items()},
            },
        )
    return result
