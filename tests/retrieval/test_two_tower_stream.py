"""The two-tower retriever trained streamed from Parquet shards (``train retrieval --stream``)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import movierec  # noqa: F401  (selects the JAX backend before keras loads)
from movierec.cli.main import main
from movierec.data.histories import Histories
from movierec.data.parquet_format import write_parquet_shards
from movierec.data.schema import Dataset
from movierec.data.training import TrainingSet
from movierec.retrieval.item_item import (
    fit_item_item,
    fit_item_item_runs,
    near_pairs,
    orthonormal,
)
from movierec.retrieval.two_tower_stream import TARGETS_PER_USER, UserBatches
from movierec.testing import make_planted_dataset

SMALL = [
    "--set",
    "embedding_dim=32",
    "--set",
    "hidden_dim=64",
    "--set",
    "feature_dim=8",
    "--set",
    "batch_size=64",
    "--set",
    "item_item_rank=32",
    "--set",
    "ema_momentum=0",
]


def planted(seed: int = 3) -> Dataset:
    """600 users in 6 tastes of 20 movies each, 12 ratings in their taste and 2 outside,
    ten minutes apart; every movie about equally popular, so popularity knows nothing
    and a model must learn the tastes to beat it."""
    return make_planted_dataset(600, 120, 14, tastes=6, off_taste=1 / 7, gap=600, seed=seed,
                                name="planted-tastes")


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    out = tmp_path_factory.mktemp("tastes")
    write_parquet_shards(planted(), out, shard_size=1_500)  # users straddle shards
    return out


@pytest.mark.slow
def test_streamed_two_tower_learns_evaluates_like_evaluate_and_indexes(shards, tmp_path, capsys):
    models = tmp_path / "models"
    argv = ["train", "retrieval", "--data", str(shards), "--stream", "--models", str(models)]
    assert main([*argv, *SMALL, "--epochs", "30", "--quiet"]) == 0
    assert "peak memory" in capsys.readouterr().out
    manifest = json.loads((models / "retrieval" / "manifest.json").read_text())
    assert manifest["streamed"] is True and manifest["split"]["method"] == "hash"
    metrics = manifest["metrics"]
    # Every movie is equally popular: popularity is near chance (20 relevant of 120).
    assert metrics["ndcg@10"] > 2 * metrics["popularity_ndcg@10"]
    assert metrics["ndcg@10"] > 0.3
    history = manifest["history"]
    assert history["loss"][-1] < history["loss"][0]
    assert len(history["epoch_seconds"]) == 30 and history["item_item_lambda"][0] > 0

    # `evaluate` re-creates the hash split in memory and scores every test user the same.
    assert main(["evaluate", "retrieval", "--models", str(models), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)["retrieval"]
    assert report["users"] == metrics["users"]
    assert report["ndcg@10"] == pytest.approx(metrics["ndcg@10"], abs=1e-4)

    # The faiss index builds from the streamed model and the recommender answers with it.
    assert main(["index", "build", "--models", str(models), "--kind", "faiss-hnsw"]) == 0
    assert (models / "retrieval" / "index" / "build.json").is_file()
    capsys.readouterr()
    assert main(["recommend", "--models", str(models), "--user", "1", "-k", "5", "--json"]) == 0
    capsys.readouterr()


def test_streamed_training_reports_labelled_lines_per_target_movie(shards, tmp_path, capsys):
    models = tmp_path / "models"
    argv = ["train", "retrieval", "--data", str(shards), "--stream", "--models", str(models)]
    assert main([*argv, *SMALL, "--epochs", "2"]) == 0
    err = capsys.readouterr().err
    assert "retrieval 'two-tower': item-item path fitted in" in err
    for epoch in (1, 2):
        assert f"retrieval 'two-tower': epoch {epoch}/2, loss " in err
    assert "(cross-entropy per target movie, against the batch's targets)" in err
    assert "Epoch" not in err and "\r" not in err and "\x1b" not in err  # no Keras bar
    history = json.loads((models / "retrieval" / "manifest.json").read_text())["history"]
    # The loss sums each user's (up to TARGETS_PER_USER) targets; the line shows one's.
    ratio = np.divide(history["loss"], history["loss_per_movie"])
    assert np.all((ratio > 1) & (ratio <= TARGETS_PER_USER + 1e-3))


def test_streamed_item_item_path_equals_the_in_memory_one():
    dataset = planted(5)
    train = TrainingSet.build(dataset, dataset.ratings)
    settings = dict(rank=200, window_seconds=1800.0, far_weight=0.25, seed=1, l2=50.0)
    memory = fit_item_item(train, **settings)
    # The streamed path's inputs: per-user runs of movies, and of times in the same order.
    stamps = train.ratings["timestamp"].to_numpy(np.float64)
    seconds = (stamps - stamps.min()).astype(np.float32)
    users, movies = np.asarray(train.user_index), np.asarray(train.movie_index)
    by_user = Histories.from_ratings(users, movies, seconds, train.users.size)
    runs = fit_item_item_runs(by_user, by_user.ratings, train.movies.size, **settings)
    # Eigenvectors are defined up to sign: compare the scores they give.
    expected = memory.query_table @ memory.candidate_table.T
    got = runs.query_table @ runs.candidate_table.T
    assert np.abs(got - expected).max() < 1e-4 * np.abs(expected).max()


def test_orthonormal_spans_the_block_even_when_ill_conditioned():
    rng = np.random.default_rng(0)
    block = rng.standard_normal((400, 30)) @ np.diag(np.logspace(0, -7, 30))
    basis = orthonormal(block)
    assert np.allclose(basis.T @ basis, np.eye(30), atol=1e-10)
    # Same column space: projecting the block onto the basis changes nothing.
    assert np.allclose(basis @ (basis.T @ block), block, atol=1e-10)


def test_user_batches_pad_to_histories_and_target_users_own_movies():
    rng = np.random.default_rng(2)
    lengths = np.array([0, 3, 40, 1, 300, 7])
    user = np.repeat(np.arange(len(lengths)), lengths)
    movie = rng.integers(1, 50, len(user)).astype(np.int32)
    histories = Histories.from_ratings(user, movie, np.ones(len(user), np.float32), len(lengths))
    settings = {"batch_size": 2, "history_dropout": 0.5, "rating_weighting": "none"}
    batches = UserBatches(histories, settings, np.full(50, 1 / 50, np.float32), seed=2)
    assert len(batches) == 3  # five users with ratings, two a batch
    seen = []
    for i in range(len(batches)):
        batch = batches[i]
        seen += batch["user"].tolist()
        for row, u in enumerate(batch["user"]):
            own = set(histories.of(u)[0].tolist())
            kept = batch["history"][row][batch["history"][row] > 0]
            assert set(kept.tolist()) <= own and len(kept) <= 256
            targets = batch["target"][row][batch["target"][row] >= 0]
            assert len(targets) == min(lengths[u], TARGETS_PER_USER)
            assert set(batch["candidate"][targets].tolist()) <= own
        assert batch["history"].shape[1] >= 8
    assert set(seen) == {1, 2, 3, 4, 5}


def test_stream_refuses_settings_it_cannot_train(shards, tmp_path, capsys):
    argv = ["train", "retrieval", "--data", str(shards), "--stream", "--models", str(tmp_path)]
    assert main([*argv, "--set", "use_user_id=true", "--quiet"]) == 2
    assert "use_user_id" in capsys.readouterr().err
    assert not (tmp_path / "retrieval").exists()


def test_streamed_item_item_path_leaves_sessions_out_past_the_near_pair_budget():
    dataset = planted(6)
    train = TrainingSet.build(dataset, dataset.ratings)
    stamps = train.ratings["timestamp"].to_numpy(np.float64)
    seconds = (stamps - stamps.min()).astype(np.float32)
    users, movies = np.asarray(train.user_index), np.asarray(train.movie_index)
    by_user = Histories.from_ratings(users, movies, seconds, train.users.size)
    settings = dict(rank=200, window_seconds=1800.0, far_weight=0.25, seed=1, l2=50.0)
    pairs = near_pairs(by_user, by_user.ratings, 1800.0)
    # 14 ratings 10 minutes apart per user: every pair of a user's is near.
    assert pairs == sum(n * (n + 1) // 2 for n in np.diff(by_user.offsets))
    within = fit_item_item_runs(by_user, by_user.ratings, train.movies.size, **settings)
    beyond = fit_item_item_runs(
        by_user, by_user.ratings, train.movies.size, max_near_pairs=pairs - 1, **settings
    )
    plain = fit_item_item(train, **{**settings, "far_weight": 1.0})
    assert within.session_weighted and not beyond.session_weighted
    expected = plain.query_table @ plain.candidate_table.T
    got = beyond.query_table @ beyond.candidate_table.T
    assert np.abs(got - expected).max() < 1e-4 * np.abs(expected).max()
