"""Train, evaluate and save a model in one step: what `movierec train` runs.

Kept apart from the command line so the benchmark and tests call the very same
code path that users do.
"""

from __future__ import annotations

import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from movierec.data.schema import Dataset
from movierec.data.shards import HashSplit, ShardedTrainingSet
from movierec.data.splits import ALL_RATINGS
from movierec.data.training import TrainingSet
from movierec.distributed import (
    check_batch_size,
    check_devices,
    data_parallel,
    local_network,
    training_devices,
    trim_to_multiple,
)
from movierec.errors import ModelError
from movierec.evaluation.evaluate import (
    evaluate_ranker,
    evaluate_ranker_on_shards,
    evaluate_retriever,
    evaluate_retriever_on_shards,
)
from movierec.models.artifacts import save_model
from movierec.models.base import Ranker, RecommenderModel, Retriever
from movierec.models.registry import model_class, streaming_models
from movierec.progress import logger
from movierec.ranking.trainer import TrainOptions


@dataclass
class TrainResult:
    """What one training run produced.

    Attributes:
        model: The fitted model (on other processes than 0 of a multi-process run,
            their copy; only process 0's is evaluated and saved).
        train: The training data it was fitted on: a :class:`TrainingSet`, or the
            :class:`ShardedTrainingSet` of a streamed run (closed by then).
        metrics: Test metrics; empty when there was no test split or this is not
            process 0.
        seconds: Wall-clock seconds spent in ``fit`` alone.
        directory: Where the model was saved, or ``None`` if it was not.
        peak_memory_mib: This process's peak resident memory in MiB, set once
            training (and evaluation) is over; 0.0 before that.
    """

    model: RecommenderModel
    train: TrainingSet | ShardedTrainingSet
    metrics: dict[str, Any]
    seconds: float
    directory: Path | None = None
    peak_memory_mib: float = 0.0


def peak_memory_mib() -> float:
    """This process's peak resident memory so far (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def jax_process_count() -> int:
    """How many JAX processes take part in this run (1 unless multi-process)."""
    import jax

    return jax.process_count()


def jax_process_index() -> int:
    """This process's index among the run's JAX processes (0 writes results)."""
    import jax

    return jax.process_index()


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
    options: TrainOptions | None = None,
    refit_ratings=None,
) -> TrainResult:
    """Fit ``kind``/``name`` on ``train_ratings``; evaluate on ``test_ratings``; maybe save.

    With ``refit_ratings`` (normally every rating of the data set), a fresh model is
    then fitted on those and is what gets returned and saved: the model that answers
    has learned from everything the users said, while its metrics stay those of the
    held-out split (the manifest says so: ``split.method`` is ``"all"``, the split
    is under ``split.holdout``, ``metrics_from`` explains).

    ``devices > 1`` trains data-parallel (see :mod:`movierec.distributed`); evaluation
    and saving then run on one device. Models with their own training loop (the dcn
    ranker: ``resumable``) also take ``options`` (checkpoints, resume) and train on
    every process's devices when several processes run; only process 0 then
    evaluates and saves. Models that checkpoint their Keras ``fit`` (the two-tower:
    ``saves_checkpoints``) take ``options`` too.

    Args:
        kind: ``"retrieval"`` or ``"ranking"``.
        name: The model's registry name (``--model``), e.g. ``"two-tower"`` or ``"dcn"``.
        dataset: The whole data set; its movie catalogue fixes the movie vocabulary.
        train_ratings: Ratings frame to fit on (normalised columns, see
            :mod:`movierec.data.schema`).
        test_ratings: Ratings frame to evaluate on; ``None`` or empty skips evaluation.
        settings: Model settings overriding the class defaults (``--set``).
        split_info: How the split was made, recorded in the saved manifest.
        out_dir: Directory to save the model into; ``None`` does not save.
        data_source: Where the data came from, recorded in the manifest.
        verbose: 0 silences training progress; above 0 every model logs one labelled
            line per epoch to the ``movierec`` logger (no Keras bars).
        devices: Number of local devices to train on data-parallel.
        options: Checkpoint, resume and device options; only models with their own
            training loop or ``saves_checkpoints`` accept checkpoints.
        refit_ratings: Ratings to refit on after the evaluation (ignored without
            test ratings); one process, no checkpoints.

    Returns:
        The :class:`TrainResult`; ``metrics`` and ``directory`` stay empty on
        processes other than 0. ``seconds`` counts both fits when refitting.

    Raises:
        MovierecError: Unknown kind or name, a batch size that does not split over
            ``devices``, or fewer devices than asked for.
        ModelError: Checkpoints asked of a model that cannot save them, or several
            processes for a model that trains in one.
    """
    model_cls = model_class(kind, name)
    own_loop = getattr(model_cls, "resumable", False)
    checkpointing = options is not None and options.checkpoint_dir is not None
    if checkpointing and not (own_loop or getattr(model_cls, "saves_checkpoints", False)):
        raise ModelError(
            f"{kind} model '{name}' does not save checkpoints "
            "(the dcn ranker and the two-tower retriever do)"
        )
    several = jax_process_count() > 1
    if several and not (own_loop or getattr(model_cls, "multi_process", False)):
        raise ModelError(
            f"{kind} model '{name}' trains in one process only "
            "(the dcn ranker and the two-tower retriever train in several)"
        )
    refit = refit_ratings is not None and test_ratings is not None and len(test_ratings) > 0
    if refit and (several or (options is not None and options.checkpoint_dir is not None)):
        raise ModelError(
            "refitting on every rating runs in one process without checkpoints; "
            "keep the model trained on the split instead (--holdout)"
        )

    def fit(ratings) -> tuple[RecommenderModel, TrainingSet, Any, float, int]:
        """One fit of a fresh model on ``ratings``: model, training set, history,
        seconds in ``fit`` and the number of devices it trained on."""
        nonlocal options
        if own_loop:
            options = options or TrainOptions(progress=verbose > 0)
            options.devices = training_devices(devices)
            model = model_cls(**(settings or {}))
            train = TrainingSet.build(dataset, ratings)
            started = time.perf_counter()
            # options: the own-loop models' (issue 22: one fit-options type in models/)
            history = model.fit(train, verbose=verbose, options=options)  # type: ignore[call-arg]
            return model, train, history, time.perf_counter() - started, len(options.devices)
        used = len(training_devices(devices)) if several else devices  # DataParallel everywhere
        check_batch_size({**model_cls.default_settings(), **(settings or {})}, used)
        check_devices(used)
        if used > 1:
            ratings = trim_to_multiple(ratings, used)
        with data_parallel(used):
            model = model_cls(**(settings or {}))
            train = TrainingSet.build(dataset, ratings)
            started = time.perf_counter()
            if checkpointing:  # a model whose Keras fit checkpoints (as own_loop's, above)
                history = model.fit(train, verbose=verbose, options=options)  # type: ignore[call-arg]
            else:
                history = model.fit(train, verbose=verbose)
            seconds = time.perf_counter() - started
        if several:
            model.network = local_network(model.network)
        return model, train, history, seconds, used

    model, train, history, seconds, used = fit(train_ratings)
    result = TrainResult(model, train, {}, seconds)
    if jax_process_index() != 0:  # process 0 evaluates and writes for the run
        return result
    if test_ratings is not None and len(test_ratings):
        logger.info("%s '%s': evaluating on %d test ratings", kind, name, len(test_ratings))
        result.metrics = evaluate_model(model, train, test_ratings)
    extra: dict[str, Any] = {"data_source": data_source, "devices": used,
                             "processes": jax_process_count()}
    split_info = split_info or {}
    if refit:
        logger.info(
            "%s '%s': refitting on all %d ratings (the metrics above stay those of the split)",
            kind, name, len(refit_ratings),
        )
        model, train, history, seconds, used = fit(refit_ratings)
        result = TrainResult(model, train, result.metrics, result.seconds + seconds)
        split_info = refit_split_info(split_info, len(refit_ratings))
        extra["metrics_from"] = METRICS_FROM_HOLDOUT
    return _finish(result, history, out_dir, split_info, extra)


#: ``manifest["metrics_from"]`` of a refitted model: what its metrics measured.
METRICS_FROM_HOLDOUT = (
    "a fit on the train part of split.holdout, scored on its test part; the saved model "
    "was then refitted on every rating"
)


def refit_split_info(holdout: dict[str, Any], ratings: int) -> dict[str, Any]:
    """The manifest's ``split`` of a model refitted on all ``ratings`` after being
    evaluated on the ``holdout`` split (recorded under ``"holdout"``)."""
    holdout = dict(holdout)
    stored = holdout.pop("stored_ratings", None)  # the refit's own count is the caller's
    info = {"method": ALL_RATINGS, "ratings": ratings, "holdout": holdout}
    return {**info, "stored_ratings": stored} if stored is not None else info


def train_streaming(
    kind: str,
    name: str,
    directory: str | Path,
    *,
    test_fraction: float = 0.2,
    seed: int = 42,
    settings: dict[str, Any] | None = None,
    out_dir: str | Path | None = None,
    verbose: int = 1,
    max_eval_ratings: int = 200_000,
    options: TrainOptions | None = None,
) -> TrainResult:
    """Fit ``kind``/``name`` streaming from the Parquet shards in ``directory``.

    Only models whose ``fit`` takes a :class:`ShardedTrainingSet` can (``streams``).
    The split is a :class:`HashSplit`, decided row by row as the shards are read; its
    validation part is the model's own ``validation_fraction`` (none if it has none).

    Args:
        kind: ``"retrieval"`` or ``"ranking"``.
        name: The model's registry name (``--model``).
        directory: Directory of Parquet shards (see :mod:`movierec.data.shards`).
        test_fraction: Share of ratings the hash split holds out for testing.
        seed: Seeds both the split and the model (unless ``settings`` sets ``seed``).
        settings: Model settings overriding the class defaults.
        out_dir: Directory to save the model into; ``None`` does not save.
        verbose: Keras-style verbosity; 0 silences progress.
        max_eval_ratings: Most test ratings a ranker is evaluated on.
        options: Checkpoint and resume options; its ``devices`` is overwritten with
            this process's first device (every process's, multi-process).

    Returns:
        The :class:`TrainResult`; its ``train`` is the (closed) sharded set.

    Raises:
        MovierecError: Unknown kind or name.
        ModelError: The model cannot train from shards, or cannot in several processes.
    """
    model_cls = model_class(kind, name)
    if jax_process_count() > 1 and not getattr(model_cls, "resumable", False):
        raise ModelError(
            f"{kind} model '{name}' streams in one process only (the dcn ranker in several)"
        )
    if not model_cls.streams:
        raise ModelError(
            f"{kind} model '{name}' trains in memory only; training from shards "
            f"(--stream) is available for {', '.join(streaming_models())}"
        )
    model = model_cls(**{"seed": seed, **(settings or {})})
    validation = float(model.settings.get("validation_fraction", 0.0))
    split = HashSplit(test_fraction, validation, seed)
    options = options or TrainOptions(progress=verbose > 0)
    options.devices = training_devices(1)
    writes = jax_process_index() == 0
    with ShardedTrainingSet(directory, split, progress=verbose > 0 and writes) as train:
        started = time.perf_counter()
        # a streaming model's fit (checked above) takes shards and the trainer's options
        history = model.fit(train, verbose=verbose, options=options)  # type: ignore[call-arg, arg-type]
        seconds = time.perf_counter() - started
        result = TrainResult(model, train, {}, seconds)
        if not writes:
            return result
        if isinstance(model, Ranker) and train.count("test"):
            result.metrics = evaluate_ranker_on_shards(model, train, max_eval_ratings)
        elif isinstance(model, Retriever) and train.count("test"):
            result.metrics = evaluate_retriever_on_shards(model, train, seed=seed)
        return _finish(
            result,
            history,
            out_dir,
            split.info(),
            {
                "data_source": str(directory),
                "devices": len(options.devices),
                "processes": jax_process_count(),
                "streamed": True,
            },
        )


def _finish(
    result: TrainResult,
    history: dict[str, list[float]] | None,
    out_dir: str | Path | None,
    split_info: dict[str, Any],
    extra: dict[str, Any],
) -> TrainResult:
    """Record peak memory and save the model (with how it was made) when asked to."""
    result.peak_memory_mib = round(peak_memory_mib(), 1)
    if out_dir is not None:
        result.directory = save_model(
            result.model,
            result.train,
            out_dir,
            split=split_info,
            metrics=result.metrics,
            extra={
                **extra,
                "training_seconds": round(result.seconds, 2),
                "peak_memory_mib": result.peak_memory_mib,
                "history": {k: [float(v) for v in vs] for k, vs in (history or {}).items()},
            },
        )
    return result
