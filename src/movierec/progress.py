"""What movierec tells a person while it works, through :mod:`logging`.

Library code logs to the ``movierec`` logger and never configures logging; the
command line does (:func:`configure_cli_logging`): progress goes to stderr as plain
lines, so stdout holds only results (tables or ``--json``), and ``--quiet`` /
``--verbose`` move the level.
"""

from __future__ import annotations

import logging
import sys

logger = logging.getLogger("movierec")


def configure_cli_logging(quiet: bool = False, verbose: bool = False) -> None:
    """INFO to stderr by default; WARNING with ``quiet``; DEBUG with ``verbose``."""
    level = logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False


def keras_verbosity(quiet: bool = False) -> int:
    """Keras ``verbose``: none when quiet, a live bar on a terminal, else one plain line
    per epoch (no bar redrawn with control codes in a log file)."""
    if quiet:
        return 0
    return 1 if sys.stdout.isatty() else 2


def fit_reporting(fit: object, label: str, verbose: int) -> dict[str, object]:
    """Keyword arguments for a model's ``fit``: with plain-line progress (``verbose=2``)
    and a ``fit`` that takes Keras callbacks, one labelled log line per epoch instead of
    Keras's own unlabelled ones."""
    import inspect

    if verbose != 2 or "callbacks" not in inspect.signature(fit).parameters:
        return {"verbose": verbose}
    return {"verbose": 0, "callbacks": [epoch_logger(label)]}


def epoch_logger(label: str) -> object:
    """A Keras callback logging ``LABEL epoch i/n: loss ..., s`` at the end of each epoch."""
    import time

    import keras

    class EpochLogger(keras.callbacks.Callback):
        """Times each epoch and logs its numeric metrics under ``label``."""

        def on_train_begin(self, logs=None):
            self.epochs = self.params.get("epochs") if self.params else None

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            values = ", ".join(
                f"{k} {v:.4f}" for k, v in (logs or {}).items() if isinstance(v, (int, float))
            )
            seconds = time.perf_counter() - self.started
            logger.info(
                "%s epoch %d/%s: %s (%.1f s)", label, epoch + 1, self.epochs, values, seconds
            )

    return EpochLogger()
