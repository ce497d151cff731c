"""Write a file or a directory whole or not at all: the one write-then-rename helper.

Why: a model, a data set or a benchmark result that a crash leaves half-written looks
valid to the next reader. Everything movierec writes goes to a temporary name beside
its target and is renamed into place only once complete (``os.replace`` is atomic on
one file system); a failure removes the temporary file and leaves the old target.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_file(path: str | Path, *, durable: bool = False) -> Iterator[Path]:
    """A temporary path to write ``path``'s new content to; renamed to ``path`` on success.

    The temporary name is hidden (``.name.tmp-PID.suffix``) and keeps the target's suffix,
    so writers that insist on one (Keras' ``.keras``, NumPy's ``.npz``) accept it.

    Args:
        path: The file to write.
        durable: Flush the new file to disk before the rename (checkpoints that must
            survive a power cut); off by default, as it costs a sync per file.

    Yields:
        The temporary path; the caller writes the whole file there.

    Example:
        >>> with atomic_file(out / "meta.json") as tmp:  # doctest: +SKIP
        ...     tmp.write_text(text)
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}{path.suffix}")
    try:
        yield tmp
        if durable:
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_file`)."""
    with atomic_file(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | Path, payload: Any, **dumps: Any) -> None:
    """Write ``payload`` as JSON to ``path`` atomically; ``dumps`` go to :func:`json.dumps`."""
    write_text(path, json.dumps(payload, **dumps) + "\n")


@contextmanager
def atomic_directory(target: str | Path, *, mode: int | None = None) -> Iterator[Path]:
    """A fresh staging directory beside ``target``, swapped into place on success.

    An existing ``target`` is replaced only once the new one is complete, and removed
    after the swap; on failure the staging directory is removed and ``target`` is left.

    Args:
        target: The directory to (re)write.
        mode: Permissions of the new directory (the staging directory is private).

    Yields:
        The staging directory to fill.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        yield staging
        if mode is not None:
            staging.chmod(mode)
        replace_directory(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def replace_directory(staging: Path, target: Path) -> None:
    """Swap ``staging`` into place; an existing ``target`` is removed only after."""
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, old)
        os.replace(staging, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, target)
