"""Where movierec keeps downloaded data, and small file helpers shared by the loaders."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from platformdirs import user_cache_dir

from movierec.errors import DataError

HOME_ENV = "MOVIEREC_HOME"


def data_home() -> Path:
    """The data directory: ``$MOVIEREC_HOME`` if set, else the user cache dir; created on demand.

    An environment variable (not only a flag) so tests, CI and the service can
    redirect every command at once.

    Raises:
        DataError: The directory is a file, or cannot be created (say which, and
            that ``$MOVIEREC_HOME`` chooses it).
    """
    raw = os.environ.get(HOME_ENV)
    home = Path(raw).expanduser() if raw else Path(user_cache_dir("movierec"))
    named = f"{HOME_ENV}={raw}" if raw else f"the data home {home}"
    if home.exists() and not home.is_dir():
        raise DataError(f"{named} is a file, not a directory; point {HOME_ENV} at a directory")
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DataError(
            f"{named} cannot be created ({error.strerror or error}); "
            f"point {HOME_ENV} at a directory you can write to"
        ) from None
    return home


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks so large rating files do not fill memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()
