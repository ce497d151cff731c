"""Progress lines: one labelled format for every model, and the API's stderr display
that lasts one call and never changes how the process logs."""

from __future__ import annotations

import logging

import pytest

import movierec  # noqa: F401  (selects the JAX backend before keras loads)
from movierec import progress
from movierec.progress import Measure, epoch_line, keras_progress, progress_on_stderr


@pytest.fixture
def fresh_logger(monkeypatch):
    """The ``movierec`` logger as a fresh process has it (no handler, no level), whatever
    earlier tests (the CLI configures it) left; restored afterwards."""
    logger = logging.getLogger("movierec")
    monkeypatch.setattr(logger, "handlers", [])
    monkeypatch.setattr(logger, "level", logging.NOTSET)
    monkeypatch.setattr(logger, "propagate", True)
    return logger


def test_epoch_line_names_the_model_and_what_each_number_is():
    line = epoch_line("ranking 'dcn'", 2, 10, [("rmse", 0.93124, "stars")], 12.44, "9 ratings/s")
    assert line == "ranking 'dcn': epoch 3/10, rmse 0.9312 stars, 12.4 s, 9 ratings/s"


def test_keras_callback_logs_labelled_scaled_lines(monkeypatch, caplog):
    assert keras_progress("x", [], verbose=0) == []
    shown = [Measure("loss", "loss", "(mse)"), Measure("rmse_scaled", "rmse", "stars", 4.0)]
    (callback,) = keras_progress("ranking 'example'", shown, verbose=1)
    callback.set_params({"epochs": 2, "steps": 4})
    monkeypatch.setattr(progress, "PROGRESS_EVERY", 0.0)  # a line at every step
    with caplog.at_level(logging.INFO, logger="movierec"):
        callback.on_train_begin()
        callback.on_epoch_begin(0)
        callback.on_train_batch_end(0)
        callback.on_epoch_end(0, {"loss": 0.0625, "rmse_scaled": 0.25, "other": 1.0})
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("ranking 'example': epoch 1/2, 25% (1 of 4 steps), epoch ETA")
    assert lines[1].startswith(
        "ranking 'example': epoch 1/2, loss 0.0625 (mse), rmse 1.0000 stars, "
    )
    assert "other" not in lines[1]


def test_keras_callback_with_ratings_per_step_shows_the_rate_and_the_run_eta(
    monkeypatch, caplog
):
    (callback,) = keras_progress("retrieval 'two-tower'", [], verbose=1, ratings_per_step=100.0)
    callback.set_params({"epochs": 3, "steps": 4})
    monkeypatch.setattr(progress, "PROGRESS_EVERY", 0.0)
    clock_now = iter([10.0, 12.0, 18.0])  # epoch begins at 10 s; 2 s a step
    monkeypatch.setattr(progress.time, "perf_counter", lambda: next(clock_now))
    with caplog.at_level(logging.INFO, logger="movierec"):
        callback.on_train_begin()
        callback.on_epoch_begin(0)
        callback.on_train_batch_end(0)
        callback.on_epoch_end(0, {})
    lines = [r.getMessage() for r in caplog.records]
    # 3 steps left in this epoch (6 s) and 2 epochs of 4 steps after it (16 s).
    assert lines[0].endswith("epoch ETA 0:00:06, 50 ratings/s, run ETA 0:00:22")
    assert lines[1].endswith("8.0 s, 50 ratings/s")  # 400 ratings in 8 s

def test_api_display_lasts_one_call_and_only_when_nothing_routes_the_logger(
    fresh_logger, capfd
):
    with progress_on_stderr(1):
        fresh_logger.info("shown")
        assert fresh_logger.handlers and fresh_logger.propagate is False
    fresh_logger.info("after the call: not shown")
    assert (fresh_logger.handlers, fresh_logger.level, fresh_logger.propagate) == (
        [], logging.NOTSET, True
    )
    with progress_on_stderr(0):
        fresh_logger.info("verbose=0: not shown")
    assert capfd.readouterr().err == "shown\n"

    # The application routes the logger itself: left exactly as it is.
    records: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())
    fresh_logger.addHandler(handler)
    fresh_logger.setLevel(logging.INFO)
    with progress_on_stderr(1):
        assert fresh_logger.handlers == [handler]
        fresh_logger.info("to the application")
    assert records == ["to the application"] and capfd.readouterr().err == ""


def test_the_cli_handler_follows_stderr_when_it_is_replaced(monkeypatch):
    import io
    import sys

    from movierec.progress import configure_cli_logging, logger

    saved = logger.handlers[:], logger.level, logger.propagate
    try:
        first = io.StringIO()
        monkeypatch.setattr(sys, "stderr", first)
        configure_cli_logging()
        first.close()  # as a test's captured stream is, once the test is over
        second = io.StringIO()
        monkeypatch.setattr(sys, "stderr", second)
        logger.info("after the swap")
        assert second.getvalue() == "after the swap\n"
    finally:
        logger.handlers[:] = saved[0]
        logger.setLevel(saved[1])
        logger.propagate = saved[2]
