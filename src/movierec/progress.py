"""What movierec tells a person while it works, through :mod:`logging`.

Library code logs to the ``movierec`` logger and never configures logging for good;
the command line does (:func:`configure_cli_logging`): progress goes to stderr as plain
lines, so stdout holds only results (tables or ``--json``), and ``--quiet`` /
``--verbose`` move the level. The Python API shows the same lines for the length of one
call (:func:`reports_progress`) when nothing else routes them.

Every model reports training the same way, one labelled line per epoch::

    retrieval 'two-tower': epoch 3/10, loss 5.3127 (cross-entropy per rated movie; ...), 12.4 s
    ranking 'dcn': epoch 3/40, rmse 0.9312 stars, val_rmse 0.9405 stars, 8.1 s, ...

Keras models train with ``verbose=0`` and report through :func:`keras_progress`, so no
raw Keras bar (or unlabelled, unscaled loss) reaches the screen; long epochs add a
labelled line every 30 s (a live bar with the same label on a terminal).
"""

from __future__ import annotations

import functools
import inspect
import logging
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

logger = logging.getLogger("movierec")

#: Seconds between the plain progress lines of one long epoch (off a terminal).
PROGRESS_EVERY = 30.0

F = TypeVar("F", bound=Callable[..., Any])


class StderrHandler(logging.StreamHandler):
    """A stream handler writing to whatever ``sys.stderr`` is when a record is emitted.

    A plain ``StreamHandler(sys.stderr)`` keeps the stream it was given: once that one
    is replaced (a test's captured stderr, a redirect) and closed, every later record
    fails with "I/O operation on closed file".
    """

    @property
    def stream(self) -> Any:
        """The current ``sys.stderr``."""
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        """Ignored: the stream is always the current ``sys.stderr``."""


def configure_cli_logging(quiet: bool = False, verbose: bool = False) -> None:
    """INFO to stderr by default; WARNING with ``quiet``; DEBUG with ``verbose``."""
    level = logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO
    handler = StderrHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False


def keras_verbosity(quiet: bool = False) -> int:
    """A model's ``fit(verbose=...)`` for the command line: 0 when quiet, else 1.

    Any positive value shows movierec's labelled progress lines; Keras's own bars
    never show (every model passes ``verbose=0`` to Keras).
    """
    return 0 if quiet else 1


@contextmanager
def progress_on_stderr(verbose: int) -> Iterator[None]:
    """Show movierec's INFO lines on stderr while the block runs, when nothing else does.

    For the Python API: a long call should say what it is doing, but a library must not
    change how the process logs. So this changes nothing when ``verbose`` is 0, when the
    ``movierec`` logger has handlers of its own (the command line's, or the
    application's), or when an ancestor's handlers already receive INFO from it.
    Otherwise, for the length of the block only, it gives the ``movierec`` logger a
    plain stderr handler, the INFO level and no propagation (so the lines show once),
    and puts all three back afterwards.

    Args:
        verbose: 0 shows nothing extra; above 0 shows progress.
    """
    if verbose <= 0 or logger.handlers or (
        logger.hasHandlers() and logger.getEffectiveLevel() <= logging.INFO
    ):
        yield
        return
    handler = StderrHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    level, propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


def reports_progress(function: F) -> F:
    """Run ``function`` inside :func:`progress_on_stderr` of its ``verbose`` argument."""
    signature = inspect.signature(function)

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        with progress_on_stderr(int(bound.arguments["verbose"])):
            return function(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def model_label(model: Any) -> str:
    """How progress lines name a model: ``retrieval 'two-tower'``, ``ranking 'dcn'``."""
    return f"{model.kind} '{model.name}'"


@dataclass(frozen=True)
class Measure:
    """One number of an epoch line: Keras's log ``key`` times ``factor``, shown as
    ``name value unit``.

    Attributes:
        key: The name in Keras's logs (``"loss"``, a metric's name).
        name: What the line calls it.
        unit: What the number is, after it (``"stars"``, ``"(mean squared error per
            rating)"``); empty for none.
        factor: Multiplies the logged value (e.g. a rating scale's width, so an RMSE
            fitted on ratings scaled to [0, 1] reads in stars).
    """

    key: str
    name: str
    unit: str = ""
    factor: float = 1.0


def epoch_line(
    label: str,
    epoch: int,
    epochs: int | None,
    values: Sequence[tuple[str, float, str]],
    seconds: float,
    rate: str = "",
) -> str:
    """The line every model logs at the end of an epoch.

    Args:
        label: Which model (:func:`model_label`), maybe with the ensemble member.
        epoch: The epoch just finished, counted from 0.
        epochs: How many epochs the run has (``None``: unknown).
        values: ``(name, value, unit)`` of each number to show, in order.
        seconds: How long the epoch took.
        rate: Throughput to add at the end (``"81,000 ratings/s"``), or empty.

    Returns:
        E.g. ``"ranking 'dcn': epoch 3/40, rmse 0.9312 stars, 8.1 s, 81,000 ratings/s"``.
    """
    parts = [f"{label}: epoch {epoch + 1}/{epochs if epochs is not None else '?'}"]
    parts += [f"{name} {value:.4f}" + (f" {unit}" if unit else "") for name, value, unit in values]
    parts.append(f"{seconds:.1f} s")
    if rate:
        parts.append(rate)
    return ", ".join(parts)


def clock(seconds: float) -> str:
    """``H:MM:SS`` of a duration (negative counts as 0)."""
    seconds = max(int(seconds), 0)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def keras_progress(
    label: str, measures: Sequence[Measure], verbose: int, ratings_per_step: float = 0.0
) -> list[Any]:
    """The Keras callbacks that report a ``fit`` as movierec does (none when quiet).

    Pass ``verbose=0`` to Keras's ``fit`` and these as (some of) its callbacks: each
    epoch ends with one :func:`epoch_line` of ``measures``; a long epoch also logs
    ``label: epoch i/n, 45% (120 of 266 steps), epoch ETA 0:00:33`` every
    :data:`PROGRESS_EVERY` seconds, or keeps a live bar of that label on a terminal.

    Args:
        label: Which model (:func:`model_label`).
        measures: The numbers each epoch line shows; a key missing from the logs is
            left out.
        verbose: The model's ``fit`` verbosity; 0 returns no callback.
        ratings_per_step: Training ratings a step covers on average; above 0, the
            lines also show ratings per second and the whole run's ETA.

    Returns:
        A list of zero or one Keras callbacks.
    """
    if verbose <= 0:
        return []
    import keras

    class KerasProgress(keras.callbacks.Callback):
        """Times each epoch and logs it as :func:`epoch_line`."""

        def on_train_begin(self, logs: dict | None = None) -> None:
            params = self.params or {}
            self.epochs, self.steps = params.get("epochs"), params.get("steps")
            self.bar = None

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.epoch, self.started = epoch, time.perf_counter()
            self.last = self.started
            if self.steps and sys.stderr.isatty():
                from tqdm.auto import tqdm

                self.bar = tqdm(
                    total=self.steps,
                    desc=f"{label}: epoch {epoch + 1}/{self.epochs}",
                    unit=" steps",
                    leave=False,
                    mininterval=1.0,
                )

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            if self.bar is not None:
                self.bar.update(1)
                return
            now = time.perf_counter()
            if not self.steps or now - self.last < PROGRESS_EVERY:
                return
            self.last, done = now, batch + 1
            per_step = (now - self.started) / done
            line = "%s: epoch %d/%s, %.0f%% (%d of %d steps), epoch ETA %s"
            args = [label, self.epoch + 1, self.epochs, 100 * done / self.steps, done,
                    self.steps, clock(per_step * (self.steps - done))]  # fmt: skip
            if ratings_per_step > 0 and self.epochs:
                later = (self.epochs - self.epoch - 1) * self.steps
                line += ", %s ratings/s, run ETA %s"
                args += [f"{ratings_per_step / max(per_step, 1e-9):,.0f}",
                         clock(per_step * (self.steps - done + later))]  # fmt: skip
            logger.info(line, *args)

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            if self.bar is not None:
                self.bar.close()
                self.bar = None
            logs = logs or {}
            values = [
                (m.name, float(logs[m.key]) * m.factor, m.unit) for m in measures if m.key in logs
            ]
            seconds = time.perf_counter() - self.started
            rate = ""
            if ratings_per_step > 0 and self.steps:
                rate = f"{ratings_per_step * self.steps / max(seconds, 1e-9):,.0f} ratings/s"
            logger.info(epoch_line(label, epoch, self.epochs, values, seconds, rate))

    return [KerasProgress()]
