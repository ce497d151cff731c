"""Raw ids (strings) to contiguous model indices, with index 0 kept for unknowns."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

OOV_INDEX = 0
#: From this many ids on, :meth:`Vocabulary.lookup` hashes in Arrow (faster than a dict
#: per id on millions of rows); below it, building Arrow's hash table costs more.
ARROW_LOOKUP_FROM = 10_000


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
        self._arrow_ids: pa.Array | None = None

    @classmethod
    def from_ids(cls, ids: Iterable[Any]) -> Vocabulary:
        """Vocabulary over the distinct ids, in sorted order (stable across runs)."""
        return cls(natural_order(ids))

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

    @property
    def arrow_ids(self) -> pa.Array:
        """Known raw ids as an Arrow string array (``arrow_ids[i - 1]`` has index ``i``)."""
        if self._arrow_ids is None:
            self._arrow_ids = pa.array(self._ids, pa.string())
        return self._arrow_ids

    def lookup(self, raws: Iterable[Any]) -> np.ndarray:
        """Indices (int32) of many ids; unknown ones get OOV_INDEX."""
        if isinstance(raws, (pa.Array, pa.ChunkedArray, pd.Series, np.ndarray)) and (
            len(raws) >= ARROW_LOOKUP_FROM
        ):
            found = pc.index_in(_arrow_strings(raws), value_set=self.arrow_ids)
            return (found.fill_null(-1).to_numpy(zero_copy_only=False) + 1).astype(np.int32)
        get = self._index.get
        return np.fromiter((get(str(r), OOV_INDEX) for r in raws), dtype=np.int32)

    def id_of(self, index: int) -> str | None:
        """Raw id of an index, or None for OOV / out of range."""
        if 1 <= index <= len(self._ids):
            return self._ids[index - 1]
        return None

    def known_id(self, index: int) -> str:
        """Raw id of a known index (1 to ``size - 1``); :class:`IndexError` for OOV or
        out of range, which only a bug produces (use :meth:`id_of` to ask)."""
        found = self.id_of(index)
        if found is None:
            raise IndexError(f"index {index} is not a known id (vocabulary of {len(self._ids)})")
        return found

    def to_json(self) -> list[str]:
        """The raw ids in index order (index = position + 1), for ``users.json`` etc."""
        return list(self._ids)

    @classmethod
    def from_json(cls, ids: list[str]) -> Vocabulary:
        """The vocabulary :meth:`to_json` wrote."""
        return cls(ids)


def natural_order(ids: Iterable[Any]) -> list[str]:
    """Distinct ids as strings, numeric ones numerically ("2" before "10"), then the rest."""
    if isinstance(ids, (pa.Array, pa.ChunkedArray)):
        ids = ids.to_pylist()
    return sorted({str(i) for i in ids}, key=_natural_key)


def _arrow_strings(raws: pa.Array | pa.ChunkedArray | pd.Series | np.ndarray) -> pa.Array:
    """The same strings ``str(raw)`` gives, as an Arrow array."""
    if isinstance(raws, (pa.Array, pa.ChunkedArray)):
        return pc.cast(raws, pa.string())
    series = pd.Series(raws)
    if not pd.api.types.is_string_dtype(series.dtype) or series.isna().any():
        series = series.map(str)
    return pa.array(series, pa.string())


def _natural_key(raw: str) -> tuple[int, int | str]:
    """Sort numeric ids numerically ("2" before "10"), others after, alphabetically."""
    return (0, int(raw)) if raw.isdigit() else (1, raw)
