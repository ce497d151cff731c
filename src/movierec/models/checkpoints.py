"""Checkpoints of a training loop: a run stopped at any step resumes exactly.

One format for every model that checkpoints (the dcn ranker's trainer, the two-tower
retriever's): a checkpoint directory holds ``state.npz`` (the network in training: its
position, weights, optimizer state and whatever else its loop needs to continue) and,
for an ensemble, one ``member-<i>.npz`` per member already trained. Every file is
written whole or not at all, and carries a fingerprint of the run (data, seed,
settings, processes), so a directory of another run is refused instead of resumed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from movierec.atomic import atomic_file
from movierec.errors import ModelError

CHECKPOINT_FORMAT = 1
STATE_FILE = "state.npz"


@dataclass
class Resume:
    """A checkpoint's position and bookkeeping (weights travel beside it); a loop
    without ensemble members or validation leaves those fields at their defaults."""

    epoch: int = 0
    step: int = 0
    #: The epoch so far: squared-error sum and ratings trained on.
    sums: list[float] = field(default_factory=lambda: [0.0, 0.0])
    history: dict[str, list[float]] = field(default_factory=dict)
    best: float | None = None
    wait: int = 0
    done: bool = False


def atomic_savez(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write an .npz next to ``path`` and rename it into place: the file is whole or absent."""
    with atomic_file(path, durable=True) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)  # type: ignore[arg-type]  # numpy stubs match **kwds to allow_pickle


class Checkpoints:
    """A checkpoint directory: ``state.npz`` (the member in training) and
    ``member-<i>.npz`` (members already trained). ``fingerprint`` says what run the
    directory belongs to; resuming a different run is refused."""

    def __init__(self, directory: Path, fingerprint: dict[str, Any], *, writes: bool = True):
        self.directory = Path(directory).expanduser()
        self.fingerprint = json.loads(json.dumps(fingerprint, sort_keys=True, default=str))
        self.writes = writes

    def _meta(self, meta: dict[str, Any]) -> np.ndarray:
        payload = {"format": CHECKPOINT_FORMAT, "run": self.fingerprint, **meta}
        return np.array(json.dumps(payload))

    def _read(self, path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
            meta = json.loads(str(arrays.pop("meta")))
        except (OSError, ValueError, KeyError) as error:
            raise ModelError(f"{path}: unreadable checkpoint ({error})") from None
        if meta.get("format") != CHECKPOINT_FORMAT:
            raise ModelError(f"{path}: unsupported checkpoint format {meta.get('format')!r}")
        if meta.get("run") != self.fingerprint:
            theirs, ours = meta.get("run", {}), self.fingerprint
            keys = sorted(k for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k))
            raise ModelError(
                f"{path} belongs to another training run (differs in {', '.join(keys)}); "
                "resume with the same data, seed, settings and processes"
            )
        return meta, arrays

    def check_resumable(self) -> None:
        """A directory with checkpoints in it; a write a kill interrupted is cleared away."""
        if not self.directory.is_dir():
            raise ModelError(f"--resume {self.directory}: no such checkpoint directory")
        if not any(self.directory.glob("*.npz")):
            raise ModelError(f"--resume {self.directory}: no checkpoint in it yet")
        if self.writes:
            for partial in self.directory.glob(".*.npz.tmp-*"):
                partial.unlink(missing_ok=True)

    def save_member(self, member: int, weights: list[np.ndarray], history: dict) -> None:
        """Record ensemble member ``member`` as trained: its final weights and history."""
        if self.writes:
            arrays = {f"w{i}": w for i, w in enumerate(weights)}
            path = self.directory / f"member-{member}.npz"
            atomic_savez(path, {**arrays, "meta": self._meta({"history": history})})

    def load_member(self, member: int) -> tuple[list[np.ndarray], dict] | None:
        """A trained member's (weights, history), or ``None`` if it was not finished;
        raises :class:`ModelError` for a file of another run or format."""
        path = self.directory / f"member-{member}.npz"
        if not path.is_file():
            return None
        meta, arrays = self._read(path)
        return [arrays[f"w{i}"] for i in range(len(arrays))], meta["history"]

    def save_state(self, member: int, resume: Resume, arrays: dict[str, np.ndarray]) -> None:
        """Record the member in training: its position and its state arrays (weights,
        accumulators and, with validation, the best weights so far)."""
        if self.writes:
            meta = {"member": member, **resume.__dict__}
            atomic_savez(self.directory / STATE_FILE, {**arrays, "meta": self._meta(meta)})

    def load_state(self, member: int) -> tuple[Resume, dict[str, np.ndarray]] | None:
        """Where training of ``member`` stopped and its state arrays, or ``None`` when
        the saved state is another member's or there is none."""
        path = self.directory / STATE_FILE
        if not path.is_file():
            return None
        meta, arrays = self._read(path)
        if meta.pop("member") != member:
            return None
        for key in ("format", "run"):
            meta.pop(key)
        return Resume(**meta), arrays
