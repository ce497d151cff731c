"""Two-tower retriever on a tiny data set with a planted preference.

Two user groups each rate only movies from "their" half of the catalogue, with
both halves equally popular, so popularity cannot tell the groups apart while a
model that learned from the histories can.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import movierec  # noqa: F401  (sets the Keras backend)
from movierec.data.schema import Dataset
from movierec.data.training import TrainingSet
from movierec.errors import ModelError
from movierec.models.base import QueryBatch
from movierec.retrieval.item_item import interaction_matrix
from movierec.retrieval.two_tower import TwoTowerRetriever
from movierec.testing import make_planted_dataset, movie_taste, user_taste

N_USERS, N_MOVIES, PER_USER, TOP = 48, 24, 6, 3
FAST = {
    "epochs": 25,
    "batch_size": 16,
    "embedding_dim": 16,
    "feature_dim": 4,
    "learning_rate": 1e-2,
    "history_dropout": 0.5,
    "hidden_dim": 16,
}


def _dataset(with_users: bool = True) -> Dataset:
    return make_planted_dataset(N_USERS, N_MOVIES, PER_USER, off_taste=0.0,
                                with_users=with_users)


def _group_of_movie(train: TrainingSet, index: np.ndarray) -> np.ndarray:
    return np.array([movie_taste(train.movies.id_of(int(i)), N_MOVIES) for i in index])


def _share_in_own_half(
    model: TwoTowerRetriever, train: TrainingSet, queries: QueryBatch, groups: np.ndarray
) -> float:
    scores = model.query_embeddings(queries) @ model.candidate_embeddings().T
    scores[:, 0] = -np.inf
    for row, history in enumerate(queries.histories):
        scores[row, history] = -np.inf
    top = np.argsort(-scores, axis=1)[:, :TOP]
    hits = [_group_of_movie(train, t) == g for t, g in zip(top, groups, strict=True)]
    return float(np.mean(hits))


def _known_users(train: TrainingSet) -> tuple[QueryBatch, np.ndarray]:
    users = np.arange(1, train.users.size, dtype=np.int32)
    groups = np.array([user_taste(train.users.id_of(int(u))) for u in users])
    return QueryBatch.from_training(train, users), groups


@pytest.fixture(scope="module")
def trained() -> tuple[TwoTowerRetriever, TrainingSet]:
    ds = _dataset()
    train = TrainingSet.build(ds, ds.ratings)
    model = TwoTowerRetriever(**FAST, use_user_id=True)
    history = model.fit(train, verbose=0)
    assert history["loss"][-1] < history["loss"][0]
    return model, train


def test_progress_shows_the_cross_entropy_per_rated_movie(caplog):
    """The loss Keras minimises is per user, summed over their movies (hundreds on
    MovieLens); the progress line shows it per movie, on the scale of ln(catalogue)."""
    ds = _dataset()
    train = TrainingSet.build(ds, ds.ratings)
    with caplog.at_level("INFO", logger="movierec"):
        history = TwoTowerRetriever(**{**FAST, "epochs": 2}).fit(train, verbose=1)
    # Every user rated PER_USER movies, all of them targets: the sum is PER_USER times it.
    np.testing.assert_allclose(
        history["loss"], np.multiply(history["loss_per_movie"], PER_USER), rtol=1e-4
    )
    lines = [r.getMessage() for r in caplog.records if "epoch" in r.getMessage()]
    assert len(lines) == 2 and lines[1].startswith(
        f"retrieval 'two-tower': epoch 2/2, loss {history['loss_per_movie'][1]:.4f} "
        f"(cross-entropy per rated movie; a uniform guess scores {np.log(N_MOVIES):.2f}), "
    )


def test_shapes_and_unknown_user_with_history(trained):
    model, train = trained
    candidates = model.candidate_embeddings()
    assert candidates.shape[0] == train.movies.size and candidates.dtype == np.float32
    half = N_MOVIES // 2
    histories = [
        train.movies.lookup([str(m) for m in range(1, 4)]),
        train.movies.lookup([str(m) for m in range(half + 1, half + 4)]),
    ]
    visitors = QueryBatch(np.zeros(2, np.int32), histories, [np.full(3, 5.0, np.float32)] * 2)
    queries = model.query_embeddings(visitors)
    assert queries.shape == (2, candidates.shape[1]) and np.isfinite(queries).all()
    assert _share_in_own_half(model, train, visitors, np.array([0, 1])) == 1.0
    # Out-of-range indices (a newer vocabulary) are treated as unknown, not a crash.
    odd = QueryBatch(np.array([10_000], np.int32), [np.array([10_000, 1], np.int32)])
    assert np.isfinite(model.query_embeddings(odd)).all()


def test_save_load_round_trip(trained, tmp_path):
    model, train = trained
    model.save(tmp_path)
    assert (tmp_path / "model.keras").is_file()
    loaded = TwoTowerRetriever.load(tmp_path, model.settings, train)
    queries, _ = _known_users(train)
    np.testing.assert_allclose(
        loaded.candidate_embeddings(), model.candidate_embeddings(), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        loaded.query_embeddings(queries), model.query_embeddings(queries), rtol=1e-5, atol=1e-6
    )


def test_load_errors(trained, tmp_path):
    model, train = trained
    with pytest.raises(ModelError):
        TwoTowerRetriever.load(tmp_path, model.settings, train)
    (tmp_path / "model.keras").write_text("not a model")
    with pytest.raises(ModelError):
        TwoTowerRetriever.load(tmp_path, model.settings, train)
    with pytest.raises(ModelError):
        TwoTowerRetriever().query_embeddings(QueryBatch(np.array([1])))
    with pytest.raises(ValueError):
        TwoTowerRetriever(no_such_setting=1)


def test_item_item_path_adds_the_low_rank_ease_score(trained):
    model, train = trained
    s = model.settings
    rank = min(s["item_item_rank"], train.movies.size)
    d = s["embedding_dim"]
    queries, _ = _known_users(train)
    query, candidates = model.query_embeddings(queries), model.candidate_embeddings()
    buckets = model.network.time_buckets
    short = model._short.vectors.shape[1] if model._short is not None else 0  # visitors'
    assert query.shape[1] == candidates.shape[1] == d + rank + buckets + 1 + short
    assert not query[:, d + rank + buckets + 1 :].any()  # known users: the network's alone
    cols = model.network.column_slices()["item_item"]
    linear = query[:, cols] @ candidates[:, cols].T
    net = model.network
    history = interaction_matrix(train)[queries.user_index].toarray()
    expected = float(net.item_scale.numpy()) * (
        history @ net.item_query_table.numpy() @ net.item_candidate_table.numpy().T
    )
    np.testing.assert_allclose(linear, expected, rtol=1e-4, atol=1e-4)
    # The scales balance the frozen paths against the deep part as the settings say
    # (spread = mean per-user standard deviation over the catalogue, every user here).
    slices = net.column_slices()

    def spread(path):
        scores = query[:, slices[path]] @ candidates[:, slices[path]].T
        return float(np.mean(scores[:, 1:].std(axis=1)))

    assert spread("item_item") == pytest.approx(s["item_item_share"] * spread("deep"), rel=1e-3)
    assert spread("popularity") == pytest.approx(
        s["recent_popularity_weight"] * spread("deep") * np.mean(
            net.popularity_table.numpy()[1:, net.user_time_bucket.numpy()[queries.user_index]]
            .std(axis=0)
        ),
        rel=1e-3,
    )


def test_similar_movies_come_from_the_same_half(trained):
    model, train = trained
    half = N_MOVIES // 2
    movies = train.movies.lookup(["1", str(half + 1)])
    scores = model.similar_scores(movies)
    assert scores.shape == (2, train.movies.size)
    for row, movie in enumerate(movies):
        scores[row, [0, movie]] = -np.inf
        top = np.argsort(-scores[row])[:5]
        assert (_group_of_movie(train, top) == row).all()


def test_without_user_table_item_item_and_with_in_batch_negatives():
    ds = _dataset(with_users=False)
    train = TrainingSet.build(ds, ds.ratings)
    settings = {**FAST, "epochs": 10, "negatives": "in-batch", "use_user_features": True}
    model = TwoTowerRetriever(
        **{**settings, "hidden_dim": 0}, item_item_rank=0, recent_popularity_weight=0.0
    )
    model.fit(train, verbose=0)
    assert model.candidate_embeddings().shape[1] == FAST["embedding_dim"] + 1  # deep + bias
    queries, groups = _known_users(train)
    assert _share_in_own_half(model, train, queries, groups) > 0.75


@pytest.mark.parametrize("steps", [1, 5, 6, 75, 600, 10_000])
def test_weight_averaging_window_fits_the_run(steps):
    from movierec.retrieval.two_tower_network import averaging_momentum

    momentum = averaging_momentum(0.99, steps)
    assert 0.0 <= momentum <= 0.99
    # The first step's weights (where the average starts) keep under e^-5 of the average.
    assert momentum**steps < np.exp(-5) or momentum == 0.0
    assert averaging_momentum(0.0, steps) == 0.0
    if steps >= 500:  # long runs use the setting as given
        assert momentum == 0.99


def test_rating_cosine_tells_loved_together_from_watched_together():
    from movierec.models.base import combined_similarity, rating_rows

    rows = [(f"u{u}", m, r, u) for u in range(4) for m, r in (("a", 5.0), ("b", 5.0), ("c", 1.0))]
    ratings = pd.DataFrame(rows, columns=["user_id", "movie_id", "rating", "timestamp"])
    movies = pd.DataFrame({"movie_id": ["a", "b", "c"], "title": ["A", "B", "C"],
                           "year": pd.array([None] * 3, dtype="Int64"), "genres": [[]] * 3})
    train = TrainingSet.build(Dataset("r", ratings, movies), ratings)
    a, b, c = (train.movies.index(m) for m in "abc")
    cosine = (rating_rows(train) @ rating_rows(train).T).toarray()
    assert cosine[a, b] == pytest.approx(1.0) and cosine[a, c] == pytest.approx(-1.0)
    # Equal vectors for every movie: only the ratings' cosine can order b above c.
    flat = np.ones((train.movies.size, 2), np.float32)
    scores = combined_similarity((flat, flat), rating_rows(train), np.array([a]), 0.5)
    assert scores[0, b] > scores[0, c]
    unweighted = combined_similarity((flat, flat), rating_rows(train), np.array([a]), 0.0)
    assert unweighted[0, b] == unweighted[0, c]


def test_popularity_path_adds_the_users_bucket_of_the_recent_table(trained):
    model, train = trained
    net = model.network
    assert net.time_buckets >= 1 and float(net.popularity_scale.numpy()) > 0
    queries, _ = _known_users(train)
    query, candidates = model.query_embeddings(queries), model.candidate_embeddings()
    cols = net.column_slices()["popularity"]
    got = query[:, cols] @ candidates[:, cols].T
    bucket = net.user_time_bucket.numpy()[queries.user_index]
    expected = float(net.popularity_scale.numpy()) * net.popularity_table.numpy()[:, bucket].T
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    # Visitors (no known id) get the latest bucket.
    visitor = model.query_embeddings(QueryBatch(np.zeros(1, np.int32), [np.array([1], np.int32)]))
    assert np.argmax(visitor[0, cols]) == 0
