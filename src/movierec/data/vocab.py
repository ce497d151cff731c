"""Raw ids (strings) to contiguous model indices, with index 0 kept for unknowns."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

OOV_INDEX = 0


class Vocabulary:
    """Maps raw ids to indices ``1..n``; anything unseen maps to :data:`OOV_INDEX` (0).

    The examples assume ids are dense integers and use them as indices directly;
    real catalogues have gaps, strings and new arrivals, so every id goes through here.
    """

    def __init__(self, ids: Iterable[Any]):
        seen: dict[str, int] = {}
        for raw in ids:
            key = str(raw)
            if key not in seen:
                seen[key] = len(seen) + 1
        self._index = seen
        self._ids = list(seen)

    @classmethod
    def from_ids(cls, ids: Iterable[Any]) -> Vocabulary:
        """Vocabulary over the distinct ids, in sorted order (stable across runs)."""
        distinct = {str(i) for i in ids}
        return cls(sorted(distinct, key=_natural_key))

    def __len__(self) -> int:
        """Number of known ids (not counting the OOV slot)."""
        return len(self._ids)

    @property
    def size(self) -> int:
        """Rows an embedding table needs: known ids plus the OOV slot."""
        return len(self._ids) + 1

    @property
    def ids(self) -> list[str]:
        """Known raw ids; ``ids[i - 1]`` has index ``i``."""
        return list(self._ids)

    def __contains__(self, raw: object) -> bool:
        return str(raw) in self._index

    def index(self, raw: object) -> int:
        """Index of one id, or OOV_INDEX."""
        return self._index.get(str(raw), OOV_INDEX)

    def lookup(self, raws: Iterable[Any]) -> np.ndarray:
        """Indices (int32) of many ids; unknown ones get OOV_INDEX."""
        get = self._index.get
        return np.fromiter((get(str(r), OOV_INDEX) for r in raws), dtype=np.int32)

    def id_of(self, index: int) -> str | None:
        """Raw id of an index, or None for OOV / out of range."""
        if 1 <= index <= len(self._ids):
            return self._ids[index - 1]
        return None

    def to_json(self) -> list[str]:
        return list(self._ids)

    @classmethod
    def from_json(cls, ids: list[str]) -> Vocabulary:
        return cls(ids)


def _natural_key(raw: str) -> tuple[int, int | str]:
    """Sort numeric ids numerically ("2" before "10"), others after, alphabetically."""
    return (0, int(raw)) if raw.isdigit() else (1, raw)
