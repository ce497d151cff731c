"""Candidate indexes: exact results, faiss recall, exclusions, row 0, save/load."""

from __future__ import annotations

import numpy as np
import pytest

from movierec.errors import ModelError, MovierecError
from movierec.retrieval.index import (
    BruteForceIndex,
    CandidateIndex,
    FaissIndex,
    make_index,
)

N, D = 5_000, 32


@pytest.fixture(scope="module")
def vectors():
    rng = np.random.default_rng(0)
    emb = rng.standard_normal((N, D)).astype(np.float32)
    emb[0] = emb[1:].mean(0) * 50  # an OOV row that would win every query if allowed
    queries = rng.standard_normal((40, D)).astype(np.float32)
    return emb, queries


@pytest.fixture(scope="module")
def exact(vectors):
    emb, queries = vectors
    return make_index("brute-force").build(emb).search(queries, 10)


def test_brute_force_is_exact_and_skips_row_zero(vectors, exact):
    emb, queries = vectors
    scores, idx = exact
    full = queries @ emb.T
    full[:, 0] = -np.inf
    expected = np.argsort(-full, axis=1)[:, :10]
    np.testing.assert_array_equal(idx, expected)
    assert scores.dtype == np.float32 and idx.dtype == np.int32
    assert (np.diff(scores, axis=1) <= 0).all()


def test_keras_reference_scorer_agrees(vectors, exact):
    emb, queries = vectors
    exclude = [exact[1][i, :3] for i in range(len(queries))]
    fast = make_index("brute-force").build(emb).search(queries, 10, exclude)
    ref = make_index("brute-force", scorer="keras").build(emb).search(queries, 10, exclude)
    np.testing.assert_array_equal(fast[1], ref[1])
    np.testing.assert_allclose(fast[0], ref[0], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "kind, settings", [("faiss-hnsw", {}), ("faiss-ivf", {"nlist": 64, "nprobe": 32})]
)
def test_faiss_recall_against_brute_force(vectors, exact, kind, settings):
    """Random Gaussian vectors are a hard case for IVF, hence half the lists probed."""
    emb, queries = vectors
    _, approx = make_index(kind, **settings).build(emb).search(queries, 10)
    assert 0 not in approx
    recall = np.mean(
        [len(np.intersect1d(a, e)) / 10 for a, e in zip(approx, exact[1], strict=True)]
    )
    assert recall >= 0.9


@pytest.mark.parametrize("kind", ["brute-force", "faiss-hnsw"])
def test_exclusions_are_respected(vectors, exact, kind):
    emb, queries = vectors
    index = make_index(kind).build(emb)
    exclude = [np.concatenate([exact[1][i, ::2], [0]]) for i in range(len(queries))]
    _, idx = index.search(queries, 10, exclude)
    for row, banned in zip(idx, exclude, strict=True):
        assert not np.isin(row, banned).any()
        assert (row > 0).all()  # still 10 real results each
    # the kept half of the exact top 10 comes first, in order
    np.testing.assert_array_equal(idx[:, :5], exact[1][:, 1::2])


def test_ids_rename_results_and_exclusions(vectors, exact):
    emb, queries = vectors
    ids = (np.arange(N) * 3 + 100).astype(np.int32)
    index = make_index("brute-force").build(emb, ids)
    _, idx = index.search(queries[:2], 10, [ids[exact[1][0, :1]], np.array([], np.int32)])
    assert ids[exact[1][0, 0]] not in idx[0]
    np.testing.assert_array_equal(idx[0, :9], ids[exact[1][0, 1:]])
    np.testing.assert_array_equal(idx[1], ids[exact[1][1]])


@pytest.mark.parametrize("kind", ["brute-force", "faiss-hnsw", "faiss-ivf"])
def test_save_load_gives_same_results(tmp_path, vectors, kind):
    emb, queries = vectors
    index = make_index(kind).build(emb, np.arange(N, dtype=np.int32)[::-1].copy())
    before = index.search(queries, 10, [np.array([5, 7])] * len(queries))
    index.save(tmp_path / kind)
    assert not list((tmp_path / kind).glob("*.tmp"))
    loaded = CandidateIndex.load(tmp_path / kind)
    assert loaded.name == kind and loaded.settings() == index.settings()
    after = loaded.search(queries, 10, [np.array([5, 7])] * len(queries))
    np.testing.assert_array_equal(before[1], after[1])
    np.testing.assert_allclose(before[0], after[0], rtol=1e-5)


def test_load_checks_kind_and_files(tmp_path, vectors):
    emb, _ = vectors
    make_index("brute-force").build(emb[:50]).save(tmp_path / "bf")
    with pytest.raises(ModelError, match="not a FaissIndex"):
        FaissIndex.load(tmp_path / "bf")
    assert isinstance(BruteForceIndex.load(tmp_path / "bf"), BruteForceIndex)
    with pytest.raises(ModelError, match="not a saved candidate index"):
        CandidateIndex.load(tmp_path / "nothing")
    (tmp_path / "bf" / "embeddings.npy").unlink()
    with pytest.raises(ModelError, match="cannot read"):
        CandidateIndex.load(tmp_path / "bf")


@pytest.mark.parametrize("kind", ["brute-force", "faiss-hnsw"])
def test_k_beyond_the_catalogue_pads_with_minus_one(kind):
    emb = np.random.default_rng(1).standard_normal((6, 4)).astype(np.float32)
    scores, idx = make_index(kind).build(emb).search(emb[1:3], 8, [np.array([2]), np.array([])])
    assert idx.shape == scores.shape == (2, 8)
    assert sorted(idx[0, :4]) == [1, 3, 4, 5] and (idx[0, 4:] == -1).all()
    assert sorted(idx[1, :5]) == [1, 2, 3, 4, 5] and (idx[1, 5:] == -1).all()
    assert np.isneginf(scores[0, 4:]).all() and np.isfinite(scores[0, :4]).all()


def test_bad_input_gets_clear_errors(vectors):
    emb, queries = vectors
    index = make_index("brute-force").build(emb)
    with pytest.raises(MovierecError, match="k must be a positive integer"):
        index.search(queries, 0)
    with pytest.raises(MovierecError, match="queries must have shape"):
        index.search(queries[:, :5], 3)
    with pytest.raises(MovierecError, match="one entry per query"):
        index.search(queries, 3, [np.array([1])])
    with pytest.raises(MovierecError, match="unknown index kind"):
        make_index("annoy")
    with pytest.raises(MovierecError, match="bad settings"):
        make_index("faiss-hnsw", colour="red")
    with pytest.raises(MovierecError, match="row 0"):
        make_index("brute-force").build(emb[:1])
    with pytest.raises(ModelError, match="empty"):
        make_index("faiss-hnsw").search(queries, 3)
