"""Training streamed from Parquet shards: histories, the hash split, shard batches, dcn."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import movierec  # noqa: F401  (selects the JAX backend before keras loads)
from movierec.cli.main import main
from movierec.data import load_dataset
from movierec.data.histories import Histories, pad_lists
from movierec.data.parquet_format import write_parquet_shards
from movierec.data.shards import ShardedTrainingSet
from movierec.data.splits import PARTS, HashSplit, make_split
from movierec.data.synth import SyntheticGenerator
from movierec.data.training import TrainingSet
from movierec.errors import MovierecError
from movierec.ranking.batches import BatchBuilder, ShardPlan, step_batches


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """4,000 planted ratings in shards of 700 rows (users straddle shard boundaries)."""
    out = tmp_path_factory.mktemp("shards")
    write_parquet_shards(SyntheticGenerator(150, 120, 4_000, seed=4), out, shard_size=700)
    return out


def test_histories_keep_rating_order_and_pad_like_lists():
    rng = np.random.default_rng(0)
    user = rng.integers(0, 6, 50)
    movie = rng.integers(1, 30, 50).astype(np.int32)
    rating = rng.integers(1, 6, 50).astype(np.float32)
    whole = Histories.from_ratings(user, movie, rating, num_users=7)
    chunked = Histories.from_chunks(
        lambda: [(user[:17], movie[:17], rating[:17]), (user[17:], movie[17:], rating[17:])], 7
    )
    for u in range(7):
        expect = movie[user == u]
        assert np.array_equal(whole.of(u)[0], expect)
        assert np.array_equal(chunked.of(u)[0], expect)
        assert np.array_equal(chunked.of(u)[1], rating[user == u])
    lists = [movie[user == u] for u in range(7)]
    stars = [rating[user == u] for u in range(7)]
    users = np.array([3, 0, 6, 5, 99])  # 99: not in the table, an empty row
    got_movies, got_stars = whole.padded(users, width=4)
    want_movies, want_stars = pad_lists(
        [lists[u] if u < 7 else np.zeros(0) for u in users],
        [stars[u] if u < 7 else np.zeros(0) for u in users],
        len(users),
        4,
    )
    assert np.array_equal(got_movies, want_movies)
    assert np.array_equal(got_stars, want_stars)


def test_hash_split_is_seeded_order_free_and_close_to_the_fraction():
    users = pa.array([str(u) for u in range(20_000)])
    movies = pa.array([str(u % 97) for u in range(20_000)])
    split = HashSplit(test_fraction=0.2, validation_fraction=0.1, seed=7)
    parts = split.parts(users, movies)
    assert abs(np.mean(parts == PARTS.index("test")) - 0.2) < 0.015
    assert abs(np.mean(parts == PARTS.index("validation")) - 0.08) < 0.015
    order = np.random.default_rng(1).permutation(20_000)
    shuffled = split.parts(users.take(pa.array(order)), movies.take(pa.array(order)))
    assert np.array_equal(shuffled, parts[order])
    assert not np.array_equal(HashSplit(0.2, 0.1, seed=8).parts(users, movies), parts)
    # The test side does not depend on the validation share.
    plain = HashSplit(0.2, 0.0, seed=7).parts(users, movies)
    assert np.array_equal(plain == PARTS.index("test"), parts == PARTS.index("test"))
    with pytest.raises(MovierecError):
        HashSplit(test_fraction=1.5)


def test_sharded_set_matches_the_in_memory_split(shards):
    dataset = load_dataset(shards)
    split = make_split(dataset.ratings, method="hash", seed=42, test_fraction=0.2)
    memory = TrainingSet.build(dataset, split.train)
    with ShardedTrainingSet(shards, HashSplit(0.2, 0.1, 42), progress=False) as sharded:
        scratch = sharded.scratch
        assert len(sharded.meta["shards"]) == 6
        assert sharded.users.ids == memory.users.ids
        assert sharded.movies.ids == memory.movies.ids
        assert len(sharded) == len(memory)
        assert sharded.count("test") == len(split.test)
        written = scratch / "train.parquet"
        sharded.write_ratings(written)
        back = pd.read_parquet(written)
        key = ["user_id", "movie_id"]
        pd.testing.assert_frame_equal(
            back.sort_values(key).reset_index(drop=True),
            split.train.sort_values(key).reset_index(drop=True),
            check_dtype=False,
        )
    assert not scratch.exists()


@pytest.mark.parametrize("processes", [1, 2])
def test_shard_batches_visit_every_training_rating_once_per_epoch(shards, processes):
    """Over all processes, every training rating once an epoch; each process reads only
    the shards dealt to it, and all take the same number of steps."""
    with ShardedTrainingSet(shards, HashSplit(0.2, 0.0, 42), progress=False) as sharded:
        histories = sharded.histories("train")
        builder = BatchBuilder(histories, 16, 4, sparse_users=True, num_movies=sharded.movies.size)
        plans = [
            ShardPlan(
                sharded.parts["train"],
                ratings_per_user=4,
                groups_per_device=8,
                process_index=p,
                process_count=processes,
                local_devices=1,
                seed=1,
            )
            for p in range(processes)
        ]
        expected = sorted(
            (int(u), int(m))
            for user, movie, _ in sharded.chunks("train")
            for u, m in zip(user, movie, strict=True)
        )
        orders = []
        for epoch in range(2):
            seen = []
            steps = {plan.steps(epoch) for plan in plans}
            assert len(steps) == 1
            read = []
            for p, plan in enumerate(plans):
                mine = set(plan.assignment(epoch)[p].tolist())
                for step in range(steps.pop() if len(steps) else plan.steps(epoch)):
                    for key, _ in plan.step_groups(epoch, step):
                        assert key in mine or key == -1
                        read.append(key)
                    batch = step_batches(plan, builder, epoch, step, seed=1)
                    # Row-sparse batches index the rows they use: map back to indices.
                    rows, movie_rows = batch["rows"][0], batch["movie_rows"][0]
                    users = rows[batch["user"][0]][batch["slot"][0]]
                    movies, weights = movie_rows[batch["movie"][0]], batch["weight"][0]
                    seen += [
                        (int(u), int(m))
                        for u, m, w in zip(users, movies, weights, strict=True)
                        if w > 0
                    ]
                    # Each query's history is that user's training history.
                    first = int(rows[batch["user"][0][0]])
                    history = movie_rows[batch["history"][0][0]]
                    assert set(history[history > 0]) <= set(histories.of(first)[0].tolist())
            assert sorted(seen) == expected
            orders.append(np.concatenate(plans[0].assignment(epoch)))
        assert len(orders[0]) == 6 and sorted(orders[0]) == list(range(6))
        assert not np.array_equal(orders[0], orders[1])


@pytest.mark.slow
def test_streamed_dcn_learns_and_evaluate_reproduces_its_metrics(
    shards, tmp_path, capsys, monkeypatch
):
    import movierec.ranking.batches as batches

    loads = []  # every shard an epoch reads is grouped once
    original = batches.make_groups

    def counting(user, *args, **kwargs):
        loads.append(len(user))
        return original(user, *args, **kwargs)

    monkeypatch.setattr(batches, "make_groups", counting)
    models = tmp_path / "models"
    argv = ["train", "ranking", "--data", str(shards), "--stream", "--models", str(models)]
    settings = ["--set", "embedding_dim=8", "--set", "members=1", "--set", "users_per_batch=16"]
    assert main([*argv, *settings, "--epochs", "12", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "peak memory" in out
    manifest = json.loads((models / "ranking" / "manifest.json").read_text())
    assert manifest["split"]["method"] == "hash" and manifest["streamed"] is True
    assert manifest["peak_memory_mib"] > 0
    streamed_rmse = manifest["metrics"]["rmse"]

    # Each epoch reads each train and validation shard once (6 + 6 here).
    epochs = len(manifest["history"]["loss"])
    assert len(loads) == 12 * epochs

    # A constant (the training mean) is the floor a learning model must beat.
    dataset = load_dataset(shards)
    split = make_split(dataset.ratings, method="hash", seed=42, test_fraction=0.2)
    constant = float(np.sqrt(np.mean((split.test["rating"] - split.train["rating"].mean()) ** 2)))
    assert streamed_rmse < constant - 0.05

    # `evaluate` re-creates the hash split in memory and gets the same figure.
    assert main(["evaluate", "ranking", "--models", str(models), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ranking"]["count"] == len(split.test) == manifest["metrics"]["count"]
    assert report["ranking"]["rmse"] == pytest.approx(streamed_rmse, abs=1e-4)


def test_stream_refuses_what_it_cannot_do(shards, tmp_path, capsys):
    base = ["train", "--data", str(shards), "--stream", "--models", str(tmp_path / "m")]
    assert main([*base[:1], "retrieval", *base[1:], "--model", "example"]) == 2
    assert "trains in memory only" in capsys.readouterr().err
    assert main([*base[:1], "ranking", *base[1:], "--split", "temporal"]) == 2
    assert "--split hash" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("kind", ["ranking", "retrieval"])
def test_stream_needs_a_shard_directory(kind, tmp_path, capsys):
    """Both default models stream only from movierec's Parquet shards (meta.json)."""
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "u.data").write_text("1\t1\t5\t0\n")
    models = ["--models", str(tmp_path / "m")]
    assert main(["train", kind, "--data", str(plain), "--stream", *models]) == 2
    assert "meta.json" in capsys.readouterr().err
    assert main(["train", kind, "--data", str(tmp_path / "absent"), "--stream", *models]) == 2
    assert "movierec data synth" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()
