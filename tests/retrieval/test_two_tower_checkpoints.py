"""Checkpoints and resume of the two-tower retriever (in memory and streamed): a
`movierec train retrieval` killed mid-epoch (SIGKILL) and resumed ends with the very
weights of a run that was never interrupted; a checkpoint of another run is refused."""

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
from movierec.models.checkpoints import Checkpoints, Resume
from movierec.testing import start_cli

#: A small two-tower: 200 planted users in batches of 8, 25 steps an epoch.
SMALL = ["batch_size=8", "embedding_dim=8", "hidden_dim=8", "feature_dim=4", "item_item_rank=8",
         "short_history_rank=8"]  # fmt: skip
SETTINGS = ["--epochs", "3", *(arg for s in SMALL for arg in ("--set", s))]


def _position(directory: Path) -> dict | None:
    try:
        with np.load(directory / "state.npz", allow_pickle=False) as data:
            return json.loads(str(data["meta"]))
    except (OSError, KeyError, ValueError):
        return None


def _weights(models: Path) -> list[np.ndarray]:
    import keras

    network = keras.saving.load_model(models / "retrieval" / "model.keras", compile=False)
    return [np.asarray(v.value) for v in network.weights]


@pytest.mark.slow
@pytest.mark.parametrize("how", ["in memory", "streamed"])
def test_killed_mid_epoch_then_resumed_equals_an_uninterrupted_run(
    how, planted_shards, tmp_path, capsys
):
    # In memory, --holdout: the uninterrupted run keeps the split's model too, as
    # checkpointed runs do; streamed runs always keep the hash split's model.
    mode = ["--holdout"] if how == "in memory" else ["--stream"]
    base = ["train", "retrieval", "--data", str(planted_shards), "--quiet", *mode, *SETTINGS]
    checkpoints = tmp_path / "checkpoints"
    killed = start_cli([*base, "--models", str(tmp_path / "killed"),
                        "--checkpoint-dir", str(checkpoints), "--checkpoint-steps", "2"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    seen = None
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and killed.poll() is None:
            seen = _position(checkpoints)
            if seen and seen["epoch"] == 1 and seen["step"] > 0:  # mid-epoch, past the first
                killed.send_signal(signal.SIGKILL)
                break
            time.sleep(0.005)
        killed.wait(timeout=60)
    finally:
        if killed.poll() is None:
            killed.kill()
    assert killed.returncode == -signal.SIGKILL, killed.stderr.read().decode()[-2000:]
    assert not (tmp_path / "killed").exists()  # nothing half-written
    assert seen["history"] and len(seen["history"]["loss"]) == 1  # one epoch in it

    assert main([*base, "--models", str(tmp_path / "resumed"), "--resume", str(checkpoints)]) == 0
    assert _position(checkpoints)["epoch"] == 3  # it went on checkpointing there
    assert main([*base, "--models", str(tmp_path / "straight")]) == 0

    resumed, straight = _weights(tmp_path / "resumed"), _weights(tmp_path / "straight")
    assert len(resumed) == len(straight) > 10
    for a, b in zip(resumed, straight, strict=True):
        assert np.array_equal(a, b)
    manifests = [
        json.loads((tmp_path / name / "retrieval" / "manifest.json").read_text())
        for name in ("resumed", "straight")
    ]
    assert manifests[0]["metrics"] == manifests[1]["metrics"]
    histories = [
        {k: v for k, v in m["history"].items() if not k.endswith("seconds")} for m in manifests
    ]
    assert histories[0] == histories[1]  # the resumed epoch's loss counts all its steps
    assert len(histories[0]["loss"]) == 3

    # The same directory resumed with another seed is another run.
    capsys.readouterr()
    other = ["--models", str(tmp_path / "other"), "--seed", "7", "--resume", str(checkpoints)]
    assert main([*base, *other]) == 2
    err = capsys.readouterr().err
    assert "movierec: error:" in err and "belongs to another training run" in err
    assert "Traceback" not in err
    assert "differs in" in err and "settings" in err


def test_resume_refuses_another_run_and_a_missing_directory(planted_shards, tmp_path, capsys):
    data, models = str(planted_shards), str(tmp_path / "m")
    base = ["train", "retrieval", "--data", data, "--quiet", "--models", models, *SETTINGS]
    assert main([*base, "--resume", str(tmp_path / "absent")]) == 2
    assert "no such checkpoint directory" in capsys.readouterr().err
    # A checkpoint of another run (a dcn's, say) in the directory: refused before training.
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    Checkpoints(foreign, {"model": "dcn", "ratings": 1}).save_state(0, Resume(), {})
    assert main([*base, "--resume", str(foreign)]) == 2
    err = capsys.readouterr().err
    assert "movierec: error:" in err and "belongs to another training run" in err
    assert "Traceback" not in err
    assert "differs in" in err and "model" in err
    assert not (tmp_path / "m").exists()


@pytest.mark.slow
def test_train_all_keeps_each_models_checkpoints_apart_and_resumes_both(planted_shards, tmp_path):
    dcn = ["members=1", "hidden_units=8", "users_per_batch=16"]
    base = ["train", "all", "--data", str(planted_shards), "--quiet", "--models",
            str(tmp_path / "m"), "--epochs", "1",
            *(arg for s in [*SMALL, *dcn] for arg in ("--set", s))]  # fmt: skip
    checkpoints = tmp_path / "ck"
    assert main([*base, "--checkpoint-dir", str(checkpoints)]) == 0
    assert _position(checkpoints)["run"]["model"] == "dcn"
    assert _position(checkpoints / "retrieval")["run"]["model"] == "two-tower"
    before = _weights(tmp_path / "m")
    # Both finished: resuming trains nothing more and saves the same retriever.
    assert main([*base, "--resume", str(checkpoints)]) == 0
    for a, b in zip(before, _weights(tmp_path / "m"), strict=True):
        assert np.array_equal(a, b)
