"""Models you can trust and swap: artifact checksums, matching stages, reload, /version."""

from __future__ import annotations

import json
import shutil
import signal
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import uvicorn
from fastapi.testclient import TestClient

from movierec.cli.main import main
from movierec.errors import ModelError
from movierec.models.artifacts import read_manifest
from movierec.pipeline import Recommender
from movierec.serving.app import create_app
from movierec.serving.server import uvicorn_config
from movierec.testing import free_port, start_server


def train_into(data: Path, models: Path, *extra: str, kind: str = "all") -> None:
    code = main(
        [
            "train",
            kind,
            "--model",
            "example",
            "--data",
            str(data),
            "--models",
            str(models),
            "--epochs",
            "1",
            "--set",
            "batch_size=128",
            "--quiet",
            *extra,
        ]
    )
    assert code == 0


@pytest.fixture
def data(example_models) -> Path:
    """The planted GroupLens files the shared example models were trained on."""
    return example_models[0].parent / "data"


@pytest.fixture
def models(example_models, tmp_path) -> Path:
    """A private copy of the shared example models."""
    copy = tmp_path / "models"
    shutil.copytree(example_models[0], copy, ignore=shutil.ignore_patterns("*.sqlite3*"))
    return copy


def test_manifest_lists_a_checksum_of_every_artifact(models):
    for stage in ("retrieval", "ranking"):
        artifacts = read_manifest(models / stage)["artifacts"]
        on_disk = {
            p.relative_to(models / stage).as_posix()
            for p in (models / stage).rglob("*")
            if p.is_file()
        } - {"manifest.json"}
        assert set(artifacts) == on_disk
        assert all(len(digest) == 64 for digest in artifacts.values())
    assert "candidates.npy" in read_manifest(models / "retrieval")["artifacts"]


def shuffle_candidates(stage: Path) -> None:
    rows = np.load(stage / "candidates.npy")
    np.save(stage / "candidates.npy", rows[np.random.default_rng(0).permutation(len(rows))])


def swap_two_movie_ids(stage: Path) -> None:
    ids = json.loads((stage / "movies.json").read_text())
    vocabulary = ids if isinstance(ids, list) else ids["ids"]
    vocabulary[0], vocabulary[1] = vocabulary[1], vocabulary[0]
    (stage / "movies.json").write_text(json.dumps(ids))


@pytest.mark.parametrize(
    "tamper, file, message",
    [
        (lambda m: shuffle_candidates(m / "retrieval"), "retrieval/candidates.npy", "SHA-256"),
        (lambda m: swap_two_movie_ids(m / "ranking"), "ranking/movies.json", "SHA-256"),
        (
            lambda m: (m / "retrieval" / "train.parquet").unlink(),
            "retrieval/train.parquet",
            "missing",
        ),
    ],
)
def test_a_tampered_model_is_refused_naming_the_file(models, tamper, file, message):
    tamper(models)
    with pytest.raises(ModelError, match=message) as error:
        Recommender.load(models)
    assert str(models / file) in str(error.value)


def test_stages_from_different_splits_are_refused(data, tmp_path, capsys):
    models = tmp_path / "mixed"
    train_into(data, models, "--seed", "1", kind="retrieval")
    capsys.readouterr()
    train_into(data, models, "--seed", "2", kind="ranking")
    assert "warning" in capsys.readouterr().err
    assert main(["recommend", "--models", str(models), "--user", "2"]) == 2
    err = capsys.readouterr().err
    assert "trained on different data or splits" in err and "split seed: 1 vs 2" in err
    assert "movierec train all" in err
    train_into(data, models, "--seed", "1", "--split", "temporal", kind="ranking")
    assert "split method: 'random' vs 'temporal'" in capsys.readouterr().err
    train_into(data, models, "--seed", "1", kind="all")
    assert "warning" not in capsys.readouterr().err
    assert main(["recommend", "--models", str(models), "--user", "2"]) == 0


def test_version_says_what_is_live(models, tmp_path):
    app = create_app(models, f"sqlite:///{tmp_path / 'r.sqlite3'}")
    with TestClient(app) as client:
        version = client.get("/version").json()
    assert version["models_dir"] == str(models) and version["reloads"] == 0
    assert len(version["model_version"]) == 16 and version["loaded_at"].endswith("Z")
    assert version["retrieval"]["artifacts"] and version["ranking"]["split"]["seed"] == 7


def test_reload_swaps_in_a_new_model_and_refuses_a_bad_one(data, models, tmp_path):
    app = create_app(models, f"sqlite:///{tmp_path / 'r.sqlite3'}")
    with TestClient(app) as client:
        before = client.get("/version").json()
        train_into(data, tmp_path / "new", "--seed", "7", "--set", "embedding_dim=8")
        for stage in ("retrieval", "ranking"):
            shutil.rmtree(models / stage)
            shutil.copytree(tmp_path / "new" / stage, models / stage)
        after = client.post("/admin/reload")
        assert after.status_code == 200, after.text
        assert after.json()["model_version"] != before["model_version"]
        assert after.json()["reloads"] == 1
        assert after.json()["retrieval"]["settings"]["embedding_dim"] == 8
        assert client.get("/users/2/recommendations").status_code == 200
        shuffle_candidates(models / "retrieval")
        refused = client.post("/admin/reload")
        assert refused.status_code == 409
        assert "candidates.npy" in refused.json()["detail"]
        assert after.json()["model_version"] in refused.json()["detail"]
        assert client.get("/version").json()["model_version"] == after.json()["model_version"]


def test_no_request_fails_during_reloads(models, tmp_path):
    key = "reload-test-key-0123456789"
    app = create_app(models, f"sqlite:///{tmp_path / 'r.sqlite3'}", api_keys=[key])
    port = free_port()
    server = uvicorn.Server(uvicorn_config(app, "127.0.0.1", port, header_timeout=10))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    base, headers = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {key}"}
    statuses: list[int] = []
    stop = threading.Event()

    def reader() -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
            while not stop.is_set():
                statuses.append(client.get("/users/2/recommendations").status_code)

    readers = [threading.Thread(target=reader) for _ in range(4)]
    try:
        for r in readers:
            r.start()
        with httpx.Client(base_url=base, headers=headers, timeout=120) as admin:
            for _ in range(3):
                assert admin.post("/admin/reload").status_code == 200
            assert admin.post("/admin/reload", headers={"Authorization": ""}).status_code == 401
            assert admin.get("/version").json()["reloads"] == 3
    finally:
        stop.set()
        for r in readers:
            r.join()
        server.should_exit = True
        thread.join(timeout=10)
    assert len(statuses) > 20 and set(statuses) == {200}


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="no SIGHUP on this platform")
def test_sighup_reloads(models, tmp_path):
    port = free_port()
    server = start_server(models, port, tmp_path / "r.sqlite3")
    try:
        assert server.stdout.readline().startswith("serving on")
        server.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if httpx.get(f"http://127.0.0.1:{port}/version").json()["reloads"] == 1:
                break
            time.sleep(0.2)
        else:
            pytest.fail("SIGHUP did not reload the models")
    finally:
        server.terminate()
        server.wait(timeout=30)
