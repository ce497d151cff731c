"""Checkpoints and resume of the two-tower's training loop (Keras ``fit``), in memory or streamed.

A checkpoint (:mod:`movierec.models.checkpoints`, the dcn's format: ``state.npz``)
holds the network's variables (trainable ones, and the non-trainable ones, among them
the dropout seed generators' state), the optimizer's (Adam's moments, its step count,
which drives the cosine decay, and the moving average of the weights kept with
``ema_momentum``), the epoch's running metrics and the position (epoch, step). The
history thinning needs no saved random state: every batch is a function of
(seed, epoch, step) (:class:`~movierec.retrieval.two_tower_examples.SeededBatches`),
so a resumed run draws the batches an uninterrupted one would.

Resuming mid-epoch trains the rest of that epoch in one ``fit`` and the later epochs
in a second; Keras writes the moving average into the model at the end of every
``fit``, so the first one is told not to. The frozen paths (item-item, short history,
popularity) are fitted in closed form from the training ratings and the seed, so a
resumed run refits them instead of saving them (streamed at 20M ratings the item-item
path is minutes of work that a resume repeats).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from typing import Any

import keras
import numpy as np

from movierec.models.checkpoints import Checkpoints, Resume
from movierec.retrieval.two_tower_examples import EpochFeed, SeededBatches

#: The variable lists a checkpoint holds, by their prefix in ``state.npz``.
_GROUPS = ("tr", "nt", "opt", "met")


def run_fingerprint(
    name: str, settings: dict[str, Any], users: int, movies: int, ratings: list[np.ndarray]
) -> dict[str, Any]:
    """What a checkpoint must match to be resumed: the model, every setting (``epochs``
    too: the step size's cosine and the averaging window span the whole run), the
    vocabulary sizes, the training ratings (a digest of ``ratings``, the arrays that
    hold them) and the processes."""
    import jax

    digest = hashlib.blake2b(digest_size=16)
    for column in ratings:
        digest.update(np.ascontiguousarray(column).tobytes())
    return {
        "model": name,
        "settings": dict(settings),
        "users": int(users),
        "movies": int(movies),
        "ratings": int(max((len(r) for r in ratings), default=0)),
        "data": digest.hexdigest(),
        "processes": jax.process_count(),
    }


def _variables(model: keras.Model) -> dict[str, list[Any]]:
    return {
        "tr": list(model.trainable_variables),
        "nt": list(model.non_trainable_variables),
        "opt": list(model.optimizer.variables),
        "met": list(model.metrics_variables),
    }


def _host(value: Any) -> np.ndarray:
    """A host copy of a variable's value (process 0's replica when several run)."""
    if getattr(value, "is_fully_addressable", True) is False:
        value = value.addressable_data(0)
    return np.array(value, copy=True)


def state_arrays(model: keras.Model) -> dict[str, np.ndarray]:
    """The model's and optimizer's variables as named host arrays (``tr0``, ``opt3``...)."""
    return {
        f"{group}{i}": _host(v.value)
        for group, variables in _variables(model).items()
        for i, v in enumerate(variables)
    }


def restore_arrays(model: keras.Model, arrays: dict[str, np.ndarray], groups=_GROUPS) -> None:
    """Assign checkpointed ``arrays`` (as :func:`state_arrays` names them) to ``model``;
    a checkpoint whose variables do not line up is refused, not half-loaded."""
    from movierec.errors import ModelError

    chosen = {g: v for g, v in _variables(model).items() if g in groups}
    for group, variables in chosen.items():
        saved = sum(1 for k in arrays if k[: len(group)] == group and k[len(group) :].isdigit())
        shapes_ok = saved == len(variables) and all(
            tuple(arrays[f"{group}{i}"].shape) == tuple(v.shape) for i, v in enumerate(variables)
        )
        if not shapes_ok:
            raise ModelError("the checkpoint's variables do not match this two-tower network")
    for group, variables in chosen.items():
        for i, variable in enumerate(variables):
            variable.assign(arrays[f"{group}{i}"])


class Checkpointing(keras.callbacks.Callback):
    """Records each epoch's logs and, given ``checkpoints``, saves the run at every
    epoch end and every ``every`` steps; restores the running metrics of a run resumed
    mid-epoch as its first epoch begins (``fit`` resets them first)."""

    def __init__(
        self,
        examples: SeededBatches,
        checkpoints: Checkpoints | None,
        every: int,
        history: dict[str, list[float]],
    ):
        super().__init__()
        self.examples, self.checkpoints, self.every = examples, checkpoints, int(every)
        self.history = history
        self.metrics: dict[str, np.ndarray] | None = None

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if self.metrics is not None:
            restore_arrays(self.model, self.metrics, groups=("met",))
            self.metrics = None

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.checkpoints is None or not self.every:
            return
        step = self.examples.first_step + batch + 1
        if step % self.every == 0 and step < self.examples.steps():
            self.save(self.examples.epoch, step)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        self.save(epoch + 1, 0)

    def save(self, epoch: int, step: int) -> None:
        """Checkpoint the run as stopped before ``step`` of ``epoch``."""
        if self.checkpoints is None or not self.checkpoints.writes:  # process 0 writes
            return
        position = Resume(epoch=epoch, step=step, history=self.history)
        self.checkpoints.save_state(0, position, state_arrays(self.model))


@contextlib.contextmanager
def _keep_training_weights(optimizer: keras.optimizers.Optimizer, keep: bool) -> Iterator[None]:
    """While ``keep``, ``fit``'s closing swap of the weights for their moving average is
    skipped: a ``fit`` that trains only part of the run must leave the weights in
    training in the model."""
    if not keep:
        yield
        return
    optimizer.finalize_variable_values = lambda variables: None
    try:
        yield
    finally:
        del optimizer.finalize_variable_values


def train_epochs(
    model: keras.Model,
    examples: SeededBatches,
    *,
    epochs: int,
    callbacks: list,
    checkpoints: Checkpoints | None,
    every: int,
    resume: tuple[Resume, dict[str, np.ndarray]] | None,
) -> dict[str, list[float]]:
    """Train ``model`` (compiled) on ``examples`` up to ``epochs``, from the start or from
    ``resume``; on return the model holds its weights' moving average when the optimizer
    keeps one, as after one uninterrupted ``fit``.

    Args:
        model: The compiled two-tower network.
        examples: The batches; their epoch and first step are set here.
        epochs: Epochs of the whole run.
        callbacks: Keras callbacks for every epoch (progress lines, experiments').
        checkpoints: Where to save the run; ``None`` saves nothing.
        every: Also checkpoint every that many steps (0: epoch ends only).
        resume: A checkpoint's position and arrays to continue from, or ``None``.

    Returns:
        Keras's per-epoch logs of the whole run (a resumed run's earlier epochs from
        its checkpoint).
    """
    position, arrays = resume if resume is not None else (Resume(), None)
    recorder = Checkpointing(examples, checkpoints, every, {
        k: list(v) for k, v in position.history.items()
    })  # fmt: skip
    if arrays is not None:
        model.optimizer.build(model.trainable_variables)
        restore_arrays(model, arrays, groups=("tr", "nt", "opt"))
        if position.step > 0:  # the stopped epoch's running loss goes on
            recorder.metrics = {k: v for k, v in arrays.items() if k.startswith("met")}
    # No shuffle: the examples shuffle themselves by (seed, epoch); Keras would shuffle
    # the batches' order with Python's global random state, which a resume cannot replay.
    hooks = [EpochFeed(examples), recorder, *callbacks]
    quiet = {"verbose": 0, "shuffle": False, "callbacks": hooks}
    start, trained = position.epoch, False
    if start < epochs and position.step > 0:  # the rest of the epoch it stopped in
        examples.first_step = position.step
        try:
            with _keep_training_weights(model.optimizer, keep=start + 1 < epochs):
                model.fit(examples, initial_epoch=start, epochs=start + 1, **quiet)
        finally:
            examples.first_step = 0
        start, trained = start + 1, True
    if start < epochs:
        model.fit(examples, initial_epoch=start, epochs=epochs, **quiet)
    elif not trained:  # stopped after its last epoch: only the closing swap is left
        model.optimizer.finalize_variable_values(model.trainable_weights)
    return recorder.history
