"""`movierec train --devices 2` on a CPU split into two XLA devices matches one device."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from movierec.errors import MovierecError
from movierec.workflow import train_model

# Both runs in one process (startup is most of the cost); --devices 1 first, since the
# two-device run sets a global distribution (restored afterwards, which is also tested).
SCRIPT = """
import sys
from movierec.cli.main import main
data, models = sys.argv[1], sys.argv[2]
for n in (1, 2):
    argv = ["train", "ranking", "--model", "example", "--data", data, "--quiet", "--holdout",
            "--models", f"{models}/d{n}", "--epochs", "20", "--set", "batch_size=64",
            "--devices", str(n)]
    assert main(argv) == 0
"""


@pytest.mark.slow
def test_two_devices_match_one_device(planted_shards, tmp_path):
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(planted_shards), str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    manifests = [
        json.loads((tmp_path / f"d{n}" / "ranking" / "manifest.json").read_text()) for n in (1, 2)
    ]
    assert [m["devices"] for m in manifests] == [1, 2]
    one, two = (m["metrics"]["rmse"] for m in manifests)
    assert abs(one - two) < 0.1
    # both beat always predicting the global mean of the training ratings
    from movierec.data import load_dataset, make_split

    split = make_split(load_dataset(planted_shards).ratings, method="random", seed=42)
    baseline = float(((split.test.rating - split.train.rating.mean()) ** 2).mean() ** 0.5)
    assert max(one, two) < baseline - 0.2


def test_too_many_devices_and_uneven_batches_are_clear_errors(planted_shards):
    from movierec.data import load_dataset

    dataset = load_dataset(planted_shards)
    with pytest.raises(MovierecError, match="xla_force_host_platform_device_count=64"):
        train_model(
            "ranking", "example", dataset, dataset.ratings, settings={"batch_size": 64}, devices=64
        )
    with pytest.raises(MovierecError, match="batch_size=64"):
        train_model(
            "ranking",
            "example",
            dataset,
            dataset.ratings,
            settings={"batch_size": 65},
            devices=2,
        )
