"""Vocabulary: OOV slot, natural order, JSON round trip."""

from __future__ import annotations

import json

import pytest

from movierec.data.vocab import OOV_INDEX, Vocabulary


def test_oov_and_indices():
    vocab = Vocabulary.from_ids(["b", "a", "a"])
    assert len(vocab) == 2 and vocab.size == 3
    assert vocab.index("a") == 1 and vocab.index("zzz") == OOV_INDEX
    assert vocab.lookup(["b", "nope", "a"]).tolist() == [2, 0, 1]
    assert "a" in vocab and "nope" not in vocab
    assert vocab.id_of(0) is None and vocab.id_of(3) is None and vocab.id_of(2) == "b"
    assert vocab.known_id(2) == "b"
    for unknown in (OOV_INDEX, 3):
        with pytest.raises(IndexError, match="not a known id"):
            vocab.known_id(unknown)


def test_natural_order_and_str_keys():
    vocab = Vocabulary.from_ids([10, "2", "x", 1, "10"])
    assert vocab.ids == ["1", "2", "10", "x"]
    assert vocab.index(10) == vocab.index("10") == 3


def test_json_round_trip():
    vocab = Vocabulary.from_ids(["7", "3", "abc"])
    again = Vocabulary.from_json(json.loads(json.dumps(vocab.to_json())))
    assert again.ids == vocab.ids
    assert again.lookup(["abc", "3", "?"]).tolist() == vocab.lookup(["abc", "3", "?"]).tolist()
