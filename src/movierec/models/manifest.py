"""A saved model's manifest: reading it and checking the files it vouches for.

``manifest.json`` (written by :func:`movierec.models.artifacts.save_model`) records
the SHA-256 of every other file in a model directory. This module reads it and checks
those files with the standard library alone, so that ``movierec search``
(:mod:`movierec.models.catalogue`) can trust ``catalogue.json`` without NumPy or pandas.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from movierec.errors import ModelError

MANIFEST = "manifest.json"
# 2: the manifest lists every artifact's SHA-256 ("artifacts").
FORMAT_VERSION = 2


def read_manifest(directory: str | Path) -> dict[str, Any]:
    """The manifest of the model in ``directory``; :class:`ModelError` if it is missing,
    unreadable or of another format version."""
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise ModelError(
            f"no trained model in {directory} (missing {MANIFEST}); run `movierec train` first"
        )
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ModelError(f"{path} is unreadable: {error}") from error
    if manifest.get("format") != FORMAT_VERSION:
        hint = (
            " (written before artifacts were checksummed: train it again)"
            if (manifest.get("format") == 1)
            else ""
        )
        raise ModelError(f"{path}: unsupported model format {manifest.get('format')!r}{hint}")
    return manifest


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read a MiB at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def artifact_digests(directory: Path) -> dict[str, str]:
    """SHA-256 of every file under ``directory`` but the manifest, by relative path."""
    return {
        path.relative_to(directory).as_posix(): sha256_file(path)
        for path in sorted(directory.rglob("*"))
        if path.is_file() and path.name != MANIFEST
    }


def verify_artifacts(
    directory: str | Path, manifest: dict[str, Any], only: Iterable[str] | None = None
) -> None:
    """Raise :class:`ModelError` naming the first artifact that is missing or differs
    from the SHA-256 in the manifest. Files the manifest does not list (an index
    built later, with its own manifest) are not checked; ``only``: check just these
    listed names (each must be listed)."""
    directory = Path(directory)
    artifacts = manifest.get("artifacts")
    if not isinstance(artifacts, dict) or not artifacts:
        raise ModelError(f"{directory / MANIFEST}: lists no artifact checksums; train it again")
    if only is not None:
        unlisted = sorted(set(only) - set(artifacts))
        if unlisted:
            raise ModelError(f"{directory / MANIFEST}: does not list {unlisted[0]}; train it again")
        artifacts = {name: artifacts[name] for name in only}
    for name, expected in sorted(artifacts.items()):
        path = directory / name
        if ".." in Path(name).parts or Path(name).is_absolute():
            raise ModelError(f"{directory / MANIFEST}: artifact path {name!r} leaves the model")
        if not path.is_file():
            raise ModelError(f"{path}: missing (listed in the manifest); train the model again")
        if sha256_file(path) != expected:
            raise ModelError(
                f"{path}: SHA-256 differs from the manifest (changed after training); "
                "restore it or train the model again"
            )
