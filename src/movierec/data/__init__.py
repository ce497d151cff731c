"""Data: loading MovieLens in its various layouts into one :class:`Dataset`, and splitting it.

The names below are imported from their submodules on first use, so that
``movierec.data.home`` (which every command reads for the data home) does not
pull in pandas: ``movierec search`` and ``movierec --help`` stay light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from movierec.data.home import data_home
    from movierec.data.loading import detect_format, load_dataset
    from movierec.data.recbole import fetch_ml100k
    from movierec.data.schema import Dataset
    from movierec.data.splits import (
        HashSplit,
        Split,
        hash_split,
        leave_last_n_split,
        make_split,
        random_split,
        temporal_split,
    )

#: Each public name and the submodule that defines it.
_SOURCES = {
    "Dataset": "schema",
    "HashSplit": "splits",
    "Split": "splits",
    "data_home": "home",
    "detect_format": "loading",
    "fetch_ml100k": "recbole",
    "hash_split": "splits",
    "leave_last_n_split": "splits",
    "load_dataset": "loading",
    "make_split": "splits",
    "random_split": "splits",
    "temporal_split": "splits",
}

__all__ = [
    "Dataset",
    "HashSplit",
    "Split",
    "data_home",
    "detect_format",
    "fetch_ml100k",
    "hash_split",
    "leave_last_n_split",
    "load_dataset",
    "make_split",
    "random_split",
    "temporal_split",
]


def __getattr__(name: str) -> Any:
    """A public name, from its submodule (imported on first use).

    Looked up there each time, not kept here: a test that patches the submodule's
    function for a while cannot leave its stand-in behind in this package.
    """
    if name not in _SOURCES:
        raise AttributeError(f"module 'movierec.data' has no attribute {name!r}")
    return getattr(importlib.import_module(f"movierec.data.{_SOURCES[name]}"), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
