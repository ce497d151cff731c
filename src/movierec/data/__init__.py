"""Data: loading MovieLens in its various layouts into one :class:`Dataset`, and splitting it."""

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
