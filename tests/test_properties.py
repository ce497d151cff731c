"""Property-based tests (hypothesis): what must hold for every input, not one example.

Each property is checked against an independent, obviously correct implementation
written here in plain Python (loops, sorted(), sets), never against the code's own
formula.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from movierec.data.histories import Histories, pad_lists, positions_in_runs
from movierec.data.splits import make_split
from movierec.data.vocab import OOV_INDEX, Vocabulary
from movierec.metrics import top_k_metrics
from movierec.retrieval.topk import top_k

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ids = st.text(alphabet="abcxyz0123456789-", min_size=1, max_size=6)


# -- vocabularies -------------------------------------------------------------------


@SETTINGS
@given(known=st.lists(ids, max_size=40), probes=st.lists(ids, max_size=20))
def test_vocabulary_numbers_each_distinct_id_once_and_maps_the_rest_to_oov(known, probes):
    vocab = Vocabulary(known)
    distinct = set(known)
    assert len(vocab) == len(distinct) and vocab.size == len(distinct) + 1
    indices = [vocab.index(i) for i in distinct]
    assert sorted(indices) == list(range(1, len(distinct) + 1))
    for raw in distinct:
        assert vocab.id_of(vocab.index(raw)) == raw
    for raw in probes:
        expected = OOV_INDEX if raw not in distinct else vocab.index(raw)
        assert vocab.index(raw) == expected
    assert vocab.lookup(probes).tolist() == [vocab.index(p) for p in probes]
    assert vocab.id_of(OOV_INDEX) is None
    assert Vocabulary.from_json(vocab.to_json()).ids == vocab.ids


# -- splits -------------------------------------------------------------------------


@st.composite
def rating_tables(draw):
    """Ratings of up to 12 users and 15 movies; no (user, movie) pair twice."""
    pairs = draw(
        st.lists(
            st.tuples(st.integers(1, 12), st.integers(1, 15)),
            min_size=5,
            max_size=80,
            unique=True,
        )
    )
    times = draw(st.lists(st.integers(0, 10_000), min_size=len(pairs), max_size=len(pairs)))
    stars = draw(st.lists(st.sampled_from([1.0, 2.0, 3.0, 4.0, 5.0]), min_size=len(pairs),
                          max_size=len(pairs)))
    frame = pd.DataFrame(
        {
            "user_id": [str(u) for u, _ in pairs],
            "movie_id": [str(m) for _, m in pairs],
            "rating": np.array(stars, np.float32),
            "timestamp": np.array(times, np.int64),
        }
    )
    return frame


def _rows(frame: pd.DataFrame) -> list[tuple]:
    return sorted(frame[["user_id", "movie_id", "rating", "timestamp"]].itertuples(False))


@SETTINGS
@given(ratings=rating_tables(), method=st.sampled_from(["random", "temporal", "hash"]),
       seed=st.integers(0, 2**16), fraction=st.floats(0.05, 0.95))
def test_split_partitions_the_ratings_and_repeats_for_a_seed(ratings, method, seed, fraction):
    split = make_split(ratings, method=method, seed=seed, test_fraction=fraction)
    # A partition: every rating on exactly one side, none invented.
    assert _rows(pd.concat([split.train, split.test])) == _rows(ratings)
    train_pairs = set(zip(split.train["user_id"], split.train["movie_id"], strict=True))
    test_pairs = set(zip(split.test["user_id"], split.test["movie_id"], strict=True))
    assert not train_pairs & test_pairs
    # Seeded and independent of row order.
    shuffled = ratings.sample(frac=1.0, random_state=seed % 1000).reset_index(drop=True)
    again = make_split(shuffled, method=method, seed=seed, test_fraction=fraction)
    assert _rows(again.test) == _rows(split.test)
    assert split.info["train_ratings"] + split.info["test_ratings"] == len(ratings)
    if method == "temporal" and len(split.test) and len(split.train):
        assert split.train["timestamp"].max() <= split.test["timestamp"].min()
    if method == "random":
        assert len(split.test) == round(len(ratings) * fraction)


@SETTINGS
@given(ratings=rating_tables(), n=st.integers(1, 3))
def test_leave_last_n_holds_out_each_users_latest_n(ratings, n):
    split = make_split(ratings, method="leave-last-n", n=n)
    assert _rows(pd.concat([split.train, split.test])) == _rows(ratings)
    for user, theirs in ratings.groupby("user_id"):
        held = split.test[split.test["user_id"] == user]
        if len(theirs) <= n:  # too few to hold any out: every rating trains
            assert held.empty
            continue
        assert len(held) == n
        latest = sorted(zip(theirs["timestamp"], theirs["movie_id"], strict=True))[-n:]
        assert sorted(held["movie_id"]) == sorted(m for _, m in latest)


# -- top-K --------------------------------------------------------------------------


@st.composite
def score_rows(draw):
    rows, cols = draw(st.integers(1, 4)), draw(st.integers(1, 12))
    values = draw(st.lists(st.integers(-5, 5), min_size=rows * cols, max_size=rows * cols))
    scores = np.array(values, np.float32).reshape(rows, cols)
    exclude = [
        np.array(draw(st.lists(st.integers(0, cols - 1), max_size=cols, unique=True)), np.int64)
        for _ in range(rows)
    ]
    return scores, exclude


@SETTINGS
@given(case=score_rows(), k=st.integers(1, 15))
def test_top_k_returns_the_best_allowed_columns_best_first(case, k):
    scores, exclude = case
    got_scores, got_indices = top_k(scores, k, exclude)
    assert got_scores.shape == got_indices.shape == (len(scores), k)
    for row in range(len(scores)):
        allowed = [c for c in range(scores.shape[1]) if c != 0 and c not in set(exclude[row])]
        best = sorted((float(scores[row, c]) for c in allowed), reverse=True)[:k]
        returned = [int(i) for i in got_indices[row] if i >= 0]
        assert len(returned) == len(best) and len(set(returned)) == len(returned)
        assert set(returned) <= set(allowed)
        assert [float(scores[row, i]) for i in returned] == best
        assert got_scores[row, : len(best)].tolist() == best
        assert all(i == -1 for i in got_indices[row, len(best):])


@SETTINGS
@given(case=score_rows(), k=st.integers(1, 12), more=st.integers(1, 12))
def test_top_k_is_a_prefix_of_every_longer_top_k_even_through_ties(case, k, more):
    """Equal scores (values -5..5 over up to 12 columns: many) are ordered by column at
    the cut too, so the pages of a list, cut at any k, never overlap or skip a movie."""
    scores, exclude = case
    _, short = top_k(scores, k, exclude)
    _, longer = top_k(scores, k + more, exclude)
    assert np.array_equal(short, longer[:, :k])
    for row in range(len(scores)):
        found = [int(i) for i in longer[row] if i >= 0]
        keys = [(-float(scores[row, i]), i) for i in found]
        assert keys == sorted(keys)  # best first, then the lower column


# -- histories ----------------------------------------------------------------------


@st.composite
def rating_logs(draw):
    users = draw(st.integers(1, 8))
    n = draw(st.integers(0, 40))
    user = np.array(draw(st.lists(st.integers(0, users - 1), min_size=n, max_size=n)), np.int64)
    movie = np.array(draw(st.lists(st.integers(1, 50), min_size=n, max_size=n)), np.int32)
    stars = np.array(draw(st.lists(st.integers(1, 5), min_size=n, max_size=n)), np.float32)
    return users, user, movie, stars


@SETTINGS
@given(log=rating_logs(), width=st.integers(1, 6), cut=st.integers(0, 40))
def test_histories_keep_each_users_ratings_in_order_however_chunked(log, width, cut):
    users, user, movie, stars = log
    expected = {u: [(int(m), float(s)) for uu, m, s in zip(user, movie, stars, strict=True)
                    if uu == u] for u in range(users)}
    whole = Histories.from_ratings(user, movie, stars, users)
    cut = min(cut, len(user))
    chunked = Histories.from_chunks(
        lambda: [(user[:cut], movie[:cut], stars[:cut]), (user[cut:], movie[cut:], stars[cut:])],
        users,
    )
    for histories in (whole, chunked):
        for u in range(users):
            m, s = histories.of(u)
            assert list(zip(m.tolist(), s.tolist(), strict=True)) == expected[u]
    padded, padded_stars = whole.padded(np.arange(-1, users + 1), width)
    for row, u in enumerate(range(-1, users + 1)):
        last = expected.get(u, [])[-width:]
        want = [m for m, _ in last] + [0] * (width - len(last))
        assert padded[row].tolist() == want
        assert padded_stars[row].tolist() == [s for _, s in last] + [0.0] * (width - len(last))


@SETTINGS
@given(lengths=st.lists(st.integers(0, 6), max_size=12))
def test_positions_in_runs_counts_up_within_each_run(lengths):
    expected = [i for length in lengths for i in range(length)]
    assert positions_in_runs(np.array(lengths, np.int64)).tolist() == expected


@SETTINGS
@given(lists=st.lists(st.lists(st.integers(1, 9), max_size=7), max_size=5),
       extra=st.integers(0, 2), width=st.integers(0, 5))
def test_pad_lists_keeps_the_last_width_entries_left_aligned(lists, extra, width):
    arrays = [np.array(x, np.int32) for x in lists]
    values = [a.astype(np.float32) * 0.5 for a in arrays]
    ids_out, values_out = pad_lists(arrays, values, len(lists) + extra, width)
    for row in range(len(lists) + extra):
        kept = (lists[row][-width:] if width else []) if row < len(lists) else []
        assert ids_out[row].tolist() == kept + [0] * (width - len(kept))
        assert values_out[row].tolist() == [v * 0.5 for v in kept] + [0.0] * (width - len(kept))


# -- metrics ------------------------------------------------------------------------


def _reference_metrics(recommended, relevant, k):
    """Textbook definitions, one user at a time, with no NumPy."""
    sums = {"recall": 0.0, "precision": 0.0, "ndcg": 0.0, "map": 0.0, "hit_rate": 0.0}
    users = 0
    for ranked, truth in zip(recommended, relevant, strict=True):
        if not truth:
            continue
        users += 1
        top = list(ranked)[:k]
        hits = [item in truth for item in top]
        sums["recall"] += sum(hits) / len(truth)
        sums["precision"] += sum(hits) / k
        sums["hit_rate"] += 1.0 if any(hits) else 0.0
        dcg = sum(1 / math.log2(rank + 2) for rank, hit in enumerate(hits) if hit)
        ideal = sum(1 / math.log2(rank + 2) for rank in range(min(len(truth), k)))
        sums["ndcg"] += dcg / ideal
        found, precisions = 0, []
        for rank, hit in enumerate(hits, start=1):
            if hit:
                found += 1
                precisions.append(found / rank)
        sums["map"] += sum(precisions) / min(len(truth), k)
    return {name: total / users for name, total in sums.items()} if users else None


@SETTINGS
@given(
    lists=st.lists(
        st.tuples(
            st.lists(st.integers(1, 20), max_size=12, unique=True),
            st.sets(st.integers(1, 20), max_size=8),
        ),
        min_size=1,
        max_size=6,
    ),
    k=st.integers(1, 12),
)
def test_top_k_metrics_match_the_textbook_definitions(lists, k):
    recommended = [r for r, _ in lists]
    relevant = [t for _, t in lists]
    got = top_k_metrics(recommended, relevant, k)
    want = _reference_metrics(recommended, relevant, k)
    if want is None:
        assert all(math.isnan(v) for v in got.values())
    else:
        assert got == pytest.approx(want, rel=1e-9, abs=1e-12)
