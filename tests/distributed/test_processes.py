"""Training in several processes (JAX's multi-process runtime, gloo collectives on CPU).

The multi-host recipe of docs/scale.md is what :func:`_start` runs: the same ``movierec train``
command in every process, with ``--coordinator``, ``--num-processes`` and ``--process-id``.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

import movierec  # noqa: F401  (selects the JAX backend before keras loads)
from movierec.cli.main import main
from movierec.data.histories import Histories
from movierec.distributed import process_settings
from movierec.errors import MovierecError
from movierec.ranking.batches import Arrays, BatchBuilder, MemoryPlan, step_batches
from movierec.testing import free_port, make_planted_dataset, small_dcn_args, start_cli

SETTINGS = small_dcn_args(1, 4)


def _start(args: list[str], processes: int) -> list[subprocess.Popen]:
    """``movierec train ...`` once per process, all joining process 0 on 127.0.0.1."""
    coordinator = f"127.0.0.1:{free_port()}"
    return [
        start_cli(
            [*args, "--coordinator", coordinator, "--num-processes", str(processes),
             "--process-id", str(i)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for i in range(processes)
    ]


def _finish(runs: list[subprocess.Popen], timeout: float) -> list[tuple[int, str, str]]:
    out = []
    try:
        for run in runs:
            stdout, stderr = run.communicate(timeout=timeout)
            out.append((run.returncode, stdout, stderr))
    finally:
        for run in runs:
            if run.poll() is None:
                run.kill()
    return out


def _manifest(models: Path) -> dict:
    return json.loads((models / "ranking" / "manifest.json").read_text())


def test_memory_plan_gives_every_rating_to_one_process_per_epoch():
    rng = np.random.default_rng(0)
    user = rng.integers(1, 40, 900)
    arrays = Arrays(user, rng.integers(1, 50, 900).astype(np.int32), np.ones(900, np.float32))
    histories = Histories.from_ratings(user, arrays.movie, arrays.rating, 40)
    builder = BatchBuilder(histories, 8, 4)

    def plans(processes: int, devices_each: int = 1) -> list[MemoryPlan]:
        devices = processes * devices_each
        return [
            MemoryPlan(
                arrays,
                ratings_per_user=4,
                groups_per_device=12 // devices,
                devices=devices,
                first_device=p * devices_each,
                local_devices=devices_each,
                seed=5,
            )
            for p in range(processes)
        ]

    for layout in ((1, 1), (2, 1), (3, 1), (2, 2)):
        seen: list[int] = []
        group_sets = []
        for plan in plans(*layout):
            mine = []
            for step in range(plan.steps(0)):
                for _, groups in plan.step_groups(0, step):
                    mine += groups[groups >= 0].tolist()
                batch = step_batches(plan, builder, 0, step, seed=5)
                assert batch["weight"].shape[0] == layout[1]
            seen += mine
            group_sets.append(set(mine))
        assert sorted(seen) == list(range(900)), layout  # each rating once, by one process
        if layout[0] > 1:
            assert not set.intersection(*group_sets)


def test_process_settings_are_checked():
    assert not process_settings(None, None, None, {}).several
    got = process_settings(None, None, None, {
        "JAX_COORDINATOR_ADDRESS": "10.0.0.1:1234", "JAX_NUM_PROCESSES": "4", "JAX_PROCESS_ID": "3"
    })  # fmt: skip
    assert (got.coordinator, got.count, got.index) == ("10.0.0.1:1234", 4, 3)
    for args, message in [
        (("h:1", 2, 2), "--process-id must be in 0..1"),
        (("nohost", 2, 0), "HOST:PORT"),
        ((None, 2, 0), "--coordinator HOST:PORT"),
        (("h:1", None, None), "needs --num-processes"),
    ]:
        with pytest.raises(MovierecError, match=message):
            process_settings(*args, environ={})


@pytest.mark.slow
def test_two_processes_train_as_well_as_one_and_share_each_epoch(planted_shards, tmp_path):
    # --holdout: one process compares like with like (several keep the split's model).
    base = ["train", "ranking", "--data", str(planted_shards), "--quiet", "--holdout", *SETTINGS]
    for mode, extra in (("memory", []), ("stream", ["--stream"])):
        models = tmp_path / f"two-{mode}"
        results = _finish(_start([*base, *extra, "--models", str(models)], 2), timeout=400)
        for code, _, stderr in results:
            assert code == 0, stderr[-3000:]
        assert "saved to" in results[0][1] and "process 0 saves the model" in results[1][1]
        assert main([*base, *extra, "--models", str(tmp_path / f"one-{mode}")]) == 0
        one, two = _manifest(tmp_path / f"one-{mode}"), _manifest(models)
        assert two["processes"] == 2 and two["devices"] == 2 and one["processes"] == 1
        # Each epoch trained on every training rating once over both processes.
        assert two["history"]["ratings"] == one["history"]["ratings"]
        fit_ratings = one["history"]["ratings"][0]
        assert all(n == fit_ratings for n in two["history"]["ratings"])
        assert abs(one["metrics"]["rmse"] - two["metrics"]["rmse"]) < 0.03, (one, two)
        assert two["metrics"]["rmse"] < 0.7  # the constant predictor scores ~1.6 here


def test_two_tower_batches_split_between_processes_see_each_example_once(monkeypatch):
    """Under DataParallel across processes each process feeds its slice of the batch one
    process would draw: together the very batches of one process, each row once."""
    import jax

    from movierec.data.training import TrainingSet
    from movierec.retrieval.two_tower import TwoTowerRetriever
    from movierec.retrieval.two_tower_examples import UserExamples

    dataset = make_planted_dataset(users=60, movies=30)
    train = TrainingSet.build(dataset, dataset.ratings)
    for negatives in ("full", "in-batch"):
        settings = {**TwoTowerRetriever.default_settings(), "negatives": negatives}
        settings["batch_size"] = 16

        def batches(index: int, count: int, settings: dict) -> list[dict[str, np.ndarray]]:
            monkeypatch.setattr(jax, "process_index", lambda: index)
            monkeypatch.setattr(jax, "process_count", lambda: count)
            examples = UserExamples(train, settings, seed=3)
            out = [examples[i] for i in range(len(examples))]
            examples.epoch = 1
            return out + [examples[i] for i in range(len(examples))]  # two epochs

        one = batches(0, 1, settings)
        parts = [batches(p, 2, settings) for p in range(2)]
        assert len(one) == len(parts[0]) == len(parts[1]) > 2
        for whole, first, second in zip(one, *parts, strict=True):
            assert set(whole) == set(first) == set(second)
            for key, value in whole.items():
                assert len(first[key]) == len(second[key]) == 8
                np.testing.assert_array_equal(np.concatenate([first[key], second[key]]), value)


@pytest.mark.slow
def test_two_processes_train_the_retriever_as_well_as_one(planted_shards, tmp_path):
    """The two-tower retriever trains with Keras DataParallel over both processes' devices."""
    settings = ["--set", "embedding_dim=32", "--set", "hidden_dim=0", "--set", "batch_size=32",
                "--epochs", "15"]  # fmt: skip
    base = ["train", "retrieval", "--data", str(planted_shards), "--quiet", "--holdout",
            *settings]
    two_models, one_models = tmp_path / "two", tmp_path / "one"
    results = _finish(_start([*base, "--models", str(two_models)], 2), timeout=400)
    for code, _, stderr in results:
        assert code == 0, stderr[-3000:]
    assert "saved to" in results[0][1] and "process 0 saves the model" in results[1][1]
    assert main([*base, "--models", str(one_models)]) == 0
    read = [
        json.loads((m / "retrieval" / "manifest.json").read_text())
        for m in (one_models, two_models)
    ]
    one, two = read
    assert two["processes"] == 2 and two["devices"] == 2 and one["processes"] == 1
    # The same number of steps per epoch: each process fed half of every batch.
    assert len(two["history"]["loss"]) == len(one["history"]["loss"]) == 15
    for metric in ("recall@10", "ndcg@10"):
        assert abs(one["metrics"][metric] - two["metrics"][metric]) < 0.05, (metric, one, two)
    assert two["metrics"]["ndcg@10"] > 0.2, two["metrics"]


@pytest.mark.slow
def test_a_dead_process_stops_the_others_with_a_clear_message(planted_shards, tmp_path):
    checkpoints = tmp_path / "ck"
    args = ["train", "ranking", "--data", str(planted_shards), "--quiet",
            "--models", str(tmp_path / "m"),
            *SETTINGS[:-1], "200", "--checkpoint-dir", str(checkpoints), "--checkpoint-steps", "2",
            "--process-timeout", "20"]  # fmt: skip
    runs = _start(args, 2)
    try:
        deadline = time.monotonic() + 300
        while not (checkpoints / "state.npz").exists() and time.monotonic() < deadline:
            assert runs[0].poll() is None, runs[0].communicate()[1][-3000:]
            time.sleep(0.1)
        runs[1].send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        _, stderr = runs[0].communicate(timeout=120)
    finally:
        for run in runs:
            if run.poll() is None:
                run.kill()
    assert runs[0].returncode == 2, stderr[-3000:]
    assert "another training process stopped" in stderr
    assert "--resume" in stderr
    assert "Traceback" not in stderr
    assert time.monotonic() - killed_at < 60
    assert not (tmp_path / "m").exists()
