"""Model names, as used by ``--model NAME``, to their classes (imported on demand)."""

from __future__ import annotations

import importlib

from movierec.errors import MovierecError
from movierec.models.base import Ranker, Retriever

RETRIEVERS: dict[str, str] = {
    "two-tower": "movierec.retrieval.two_tower:TwoTowerRetriever",
    "example": "movierec.retrieval.example:ExampleRetriever",
}
RANKERS: dict[str, str] = {
    "dcn": "movierec.ranking.rating_model:RatingModel",
    "example": "movierec.ranking.example:ExampleRanker",
}
DEFAULT_RETRIEVER = "two-tower"
DEFAULT_RANKER = "dcn"


def _resolve(table: dict[str, str], kind: str, name: str) -> type:
    if name not in table:
        raise MovierecError(f"unknown {kind} model {name!r}; choose from {', '.join(table)}")
    module, _, attr = table[name].partition(":")
    return getattr(importlib.import_module(module), attr)


def retriever_class(name: str = DEFAULT_RETRIEVER) -> type[Retriever]:
    """The retriever class registered as ``name``; :class:`MovierecError` if none is."""
    return _resolve(RETRIEVERS, "retrieval", name)


def ranker_class(name: str = DEFAULT_RANKER) -> type[Ranker]:
    """The ranker class registered as ``name``; :class:`MovierecError` if none is."""
    return _resolve(RANKERS, "ranking", name)


def model_class(kind: str, name: str) -> type[Retriever] | type[Ranker]:
    """The class of ``kind`` ("retrieval" or "ranking") registered as ``name``;
    :class:`MovierecError` for an unknown kind or name."""
    if kind == "retrieval":
        return retriever_class(name)
    if kind == "ranking":
        return ranker_class(name)
    raise MovierecError(f"unknown model kind {kind!r}; choose retrieval or ranking")


def streaming_models() -> list[str]:
    """"kind 'name'" of every model that can train streaming from Parquet shards."""
    tables = {"retrieval": RETRIEVERS, "ranking": RANKERS}
    return [
        f"{kind} '{name}'"
        for kind, table in tables.items()
        for name in table
        if model_class(kind, name).streams
    ]
