"""Checkpoints and resume: a training process killed mid-epoch (SIGKILL) and resumed
ends with the very weights of a run that was never interrupted."""

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
from movierec.models.checkpoints import Checkpoints, atomic_savez
from movierec.testing import small_dcn_args, start_cli

SETTINGS = small_dcn_args(2, 5, "patience=100")


def _weights(models: Path) -> list[np.ndarray]:
    import keras

    network = keras.saving.load_model(models / "ranking" / "model.keras", compile=False)
    return [np.asarray(v.value) for v in network.weights]


def _state(directory: Path) -> dict | None:
    try:
        with np.load(directory / "state.npz", allow_pickle=False) as data:
            return json.loads(str(data["meta"]))
    except (OSError, KeyError, ValueError):
        return None


@pytest.mark.slow
def test_killed_mid_epoch_then_resumed_equals_an_uninterrupted_run(planted_shards, tmp_path):
    # --holdout: the uninterrupted run keeps the split's model too, as checkpointed runs do.
    base = ["train", "ranking", "--data", str(planted_shards), "--quiet", "--holdout", *SETTINGS]
    checkpoints = tmp_path / "checkpoints"
    killed = start_cli(
        [*base, "--models", str(tmp_path / "killed"), "--checkpoint-dir", str(checkpoints),
         "--checkpoint-steps", "3"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        seen = None
        while time.monotonic() < deadline and killed.poll() is None:
            seen = _state(checkpoints)
            # Second member, past its first epoch, mid-epoch: member 0 is in its own file.
            if seen and seen["member"] == 1 and seen["epoch"] >= 1 and seen["step"] > 0:
                killed.send_signal(signal.SIGKILL)
                break
            time.sleep(0.005)
        killed.wait(timeout=60)
    finally:
        if killed.poll() is None:
            killed.kill()
    assert killed.returncode == -signal.SIGKILL, killed.stderr.read().decode()[-2000:]
    assert (checkpoints / "member-0.npz").is_file()
    assert not (tmp_path / "killed").exists()  # nothing half-written

    assert main([*base, "--models", str(tmp_path / "resumed"), "--resume", str(checkpoints)]) == 0
    assert main([*base, "--models", str(tmp_path / "straight")]) == 0

    resumed, straight = _weights(tmp_path / "resumed"), _weights(tmp_path / "straight")
    assert len(resumed) == len(straight) > 10
    for a, b in zip(resumed, straight, strict=True):
        assert np.array_equal(a, b)
    manifests = [
        json.loads((tmp_path / name / "ranking" / "manifest.json").read_text())
        for name in ("resumed", "straight")
    ]
    assert manifests[0]["metrics"]["rmse"] == manifests[1]["metrics"]["rmse"]
    histories = [
        {k: v for k, v in m["history"].items() if not k.endswith("seconds")} for m in manifests
    ]
    assert histories[0] == histories[1]
    assert len(histories[0]["member1_val_rmse"]) == 5


def test_resume_refuses_another_run_and_missing_checkpoints(planted_shards, tmp_path, capsys):
    data, models = str(planted_shards), str(tmp_path / "m")
    base = ["train", "ranking", "--data", data, "--quiet", "--models", models]
    assert main([*base, "--resume", str(tmp_path / "absent")]) == 2
    assert "no such checkpoint directory" in capsys.readouterr().err
    checkpoints = tmp_path / "ck"
    small = small_dcn_args(1, 2, "patience=100")
    assert main([*base, *small, "--checkpoint-dir", str(checkpoints)]) == 0
    capsys.readouterr()
    # Same directory, other seed: a different run.
    assert main([*base, *small, "--seed", "7", "--resume", str(checkpoints)]) == 2
    assert "belongs to another training run (differs in settings)" in capsys.readouterr().err
    assert main([*base, "--checkpoint-steps", "5"]) == 2
    assert "--checkpoint-steps needs --checkpoint-dir" in capsys.readouterr().err


def test_checkpoint_files_are_whole_or_absent(tmp_path, monkeypatch):
    import movierec.atomic as atomic

    path = tmp_path / "state.npz"
    atomic_savez(path, {"a": np.arange(3), "meta": np.array("{}")})

    def disk_full(fd):
        raise OSError("No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", disk_full)
    with pytest.raises(OSError):
        atomic_savez(path, {"a": np.arange(5)})
    with np.load(path) as data:
        assert data["a"].tolist() == [0, 1, 2]
    assert [p.name for p in tmp_path.iterdir()] == ["state.npz"]
    damaged = tmp_path / "member-0.npz"
    damaged.write_bytes(b"not a zip")
    with pytest.raises(Exception, match="unreadable checkpoint"):
        Checkpoints(tmp_path, {}).load_member(0)
