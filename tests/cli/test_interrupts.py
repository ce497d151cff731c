"""Ctrl-C at any moment: status 130, one line on stderr, no traceback, no model left half-made."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from movierec.testing import make_planted_dataset, write_ml_latest

SRC = str(Path(__file__).parents[2] / "src")


def _python(*args: str, **popen) -> subprocess.Popen:
    """``python ARGS`` importing this checkout's code, stderr piped as text."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, *sys.path])}
    return subprocess.Popen([sys.executable, *args], env=env, stderr=subprocess.PIPE,
                            text=True, **popen)


def _guarded(body: str, tmp_path: Path) -> tuple[int, str]:
    """Exit status and stderr of ``movierec search`` in a fresh process whose command
    is replaced by ``body`` (the code of a ``run(args)`` function)."""
    script = textwrap.dedent(
        """
        import signal, sys, time
        from movierec.cli import commands, main as cli

        def busy(seconds):
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                time.sleep(0.01)
        """
    ) + textwrap.dedent(body) + textwrap.dedent(
        f"""
        commands.run = run
        sys.argv = ["movierec", "search", "x", "--models", {str(tmp_path)!r}]
        sys.exit(cli.main())
        """
    )
    child = _python("-c", script, stdout=subprocess.DEVNULL)
    _, err = child.communicate(timeout=60)
    return child.returncode, err


def test_an_interrupt_python_drops_is_raised_again(tmp_path):
    """A KeyboardInterrupt raised in a ``__del__`` or a garbage-collector callback (where
    JAX's gc callback meets a Ctrl-C during start-up) is printed and dropped by Python,
    and the command ran on to the end; now it ends the command."""
    rc, err = _guarded(
        """
        class Dropped:
            def __del__(self):
                raise KeyboardInterrupt

        def run(args):
            Dropped()  # __del__ runs here, and Python would drop its KeyboardInterrupt
            busy(20)
            return 0
        """,
        tmp_path,
    )
    assert (rc, err) == (130, "movierec: interrupted\n")


def test_an_interrupt_turned_into_another_error_is_still_an_interrupt(tmp_path):
    """Keras, interrupted while creating a variable, raises a TypeError instead."""
    rc, err = _guarded(
        """
        def run(args):
            try:
                signal.raise_signal(signal.SIGINT)
                busy(5)
            except KeyboardInterrupt:
                raise TypeError("'NoneType' object is not callable") from None
            return 0
        """,
        tmp_path,
    )
    assert (rc, err) == (130, "movierec: interrupted\n")


def test_an_ordinary_error_is_not_taken_for_an_interrupt(tmp_path):
    rc, err = _guarded(
        """
        def run(args):
            raise TypeError("a bug")
        """,
        tmp_path,
    )
    assert rc == 1 and err.rstrip().endswith("TypeError: a bug")


#: Moments of `movierec train` to interrupt, each as the stderr line it waits for:
#: inside `import jax` (python -X importtime lists each module as it finishes), at the
#: start of the first fit (Keras builds and XLA compiles), and after the first epoch.
MOMENTS = {
    "importing jax": re.compile(r"^import time:.*\|\s+jax\.\S+$"),
    "compiling": re.compile(r"^training retrieval model"),
    "training": re.compile(r"epoch 1/"),
}


@pytest.mark.slow
@pytest.mark.parametrize("moment", list(MOMENTS))
def test_ctrl_c_during_train_exits_130_and_leaves_no_model(moment, tmp_path):
    data = write_ml_latest(make_planted_dataset(), tmp_path / "data")
    models = tmp_path / "models"
    child = _python("-X", "importtime", "-m", "movierec.cli.main", "train", "--data",
                    str(data), "--models", str(models), stdout=subprocess.PIPE)
    seen = []
    try:
        for line in child.stderr:
            seen.append(line)
            if MOMENTS[moment].search(line.rstrip("\n")):
                child.send_signal(signal.SIGINT)
                break
        else:
            pytest.fail(f"the run ended before {moment}: {''.join(seen[-5:])}")
        out, rest = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
    err = "".join(seen) + rest
    assert child.returncode == 130, err[-3000:]
    assert err.rstrip().endswith("movierec: interrupted")
    assert "Traceback" not in err and "Exception ignored" not in err
    assert "trained in" not in out
    assert not models.exists() or not any(models.iterdir())
