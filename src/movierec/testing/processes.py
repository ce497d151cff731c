"""Child processes for end-to-end tests: the ``movierec`` command and its service.

Load, soak and service tests only talk to 127.0.0.1; :func:`free_port` finds a port
there and :func:`start_server` starts ``movierec serve`` on it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

#: The directory holding the ``movierec`` package this module belongs to, so a child
#: process imports the same code (a checkout's ``src``, or site-packages).
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def small_dcn_args(members: int, epochs: int, *extra: str) -> list[str]:
    """``movierec train`` arguments for a small, quick dcn (CLI and process tests).

    Args:
        members: The ensemble size (``members=``).
        epochs: ``--epochs``.
        *extra: More ``name=value`` settings.

    Returns:
        The arguments, ``--set`` pairs then ``--epochs``.
    """
    settings = [f"members={members}", "embedding_dim=8", "hidden_units=8", "users_per_batch=16",
                *extra]  # fmt: skip
    return [arg for s in settings for arg in ("--set", s)] + ["--epochs", str(epochs)]


def start_cli(args: list[str], **popen: Any) -> subprocess.Popen:
    """Start ``movierec ARGS`` in a child process that imports this same package.

    Args:
        args: The command's arguments.
        **popen: :class:`subprocess.Popen` options such as ``stdout``.

    Returns:
        The running process; the caller waits for it or ends it.
    """
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([_PACKAGE_ROOT, *sys.path])}
    return subprocess.Popen([sys.executable, "-m", "movierec.cli.main", *args], env=env, **popen)


def start_server(models: Path, port: int, db: Path) -> subprocess.Popen:
    """Start ``movierec serve`` on 127.0.0.1:``port`` in a child process.

    Its stdout is piped (text), so a test can wait for its "serving on" line.

    Args:
        models: The models directory to serve.
        port: The port (see :func:`free_port`).
        db: The SQLite ratings file.

    Returns:
        The running server process; the caller ends it.
    """
    return start_cli(
        ["serve", "--models", str(models), "--port", str(port), "--db", f"sqlite:///{db}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
