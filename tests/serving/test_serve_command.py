"""``movierec serve`` start-up: port problems are one error line before the models
load; the port is bound first and handed to uvicorn; JAX's backend chatter is silent."""

from __future__ import annotations

import logging
import socket
import subprocess
import time

import httpx
import pytest
import uvicorn

from movierec.cli.main import main
from movierec.testing import free_port, start_cli

JAX_BRIDGE = "jax._src.xla_bridge"


def error_lines(capsys) -> list[str]:
    return capsys.readouterr().err.splitlines()


@pytest.mark.parametrize("port", ["99999", "65536", "0", "-1"])
def test_a_port_out_of_range_is_one_error_before_anything_loads(port, tmp_path, capsys):
    # no models there: had they been loaded first, the error would say so
    assert main(["serve", "--models", str(tmp_path / "none"), "--port", port]) == 2
    assert error_lines(capsys) == [f"movierec: error: --port must be 1 to 65535, got {port}"]


def test_a_port_in_use_is_one_error_before_anything_loads(tmp_path, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.perf_counter()
        code = main(["serve", "--models", str(tmp_path / "none"), "--port", str(port)])
        assert time.perf_counter() - started < 5
    assert code == 2
    assert error_lines(capsys) == [
        f"movierec: error: cannot listen on 127.0.0.1:{port}: the port is already in use "
        "(another server? pick --port)"
    ]


def test_a_host_that_is_not_this_machine_is_one_error(tmp_path, capsys):
    # 192.0.2.0/24 is reserved for documentation: never an address of this machine
    args = ["serve", "--models", str(tmp_path / "none"), "--host", "192.0.2.1", "--no-auth"]
    assert main([*args, "--port", str(free_port())]) == 2
    [line] = error_lines(capsys)
    assert line.startswith("movierec: error: cannot listen on 192.0.2.1:"), line


def test_serve_hands_uvicorn_the_port_it_bound_and_silences_jax(
    example_models, tmp_path, monkeypatch
):
    models, _ = example_models
    port = free_port()
    seen = {}

    def run(self, sockets=None):
        seen["config"] = self.config
        seen["bound"] = [sock.getsockname()[:2] for sock in sockets]
        seen["jax_info"] = logging.getLogger(JAX_BRIDGE).isEnabledFor(logging.INFO)
        with socket.socket() as other, pytest.raises(OSError):  # held while the models load
            other.bind(("127.0.0.1", port))

    monkeypatch.setattr(uvicorn.Server, "run", run)
    bridge = logging.getLogger(JAX_BRIDGE)
    level = bridge.level
    try:
        args = ["serve", "--models", str(models), "--port", str(port),
                "--db", f"sqlite:///{tmp_path / 'r.sqlite3'}"]  # fmt: skip
        assert main(args) == 0
    finally:
        bridge.setLevel(level)
    assert seen["bound"] == [("127.0.0.1", port)]
    assert seen["config"].port == port
    assert seen["jax_info"] is False
    with socket.socket() as again:  # closed once serve returns
        again.bind(("127.0.0.1", port))


def test_library_code_leaves_the_jax_logger_alone(example_models, monkeypatch):
    # From a known state: a command line run in this process earlier (serve, which
    # quiets the logger on purpose) may have set it; monkeypatch restores it after.
    monkeypatch.setattr(logging.getLogger(JAX_BRIDGE), "level", logging.NOTSET)
    _, recommender = example_models
    recommender.recommend(recommender.retrieval.train.users.ids[0], 3)
    assert logging.getLogger(JAX_BRIDGE).level == logging.NOTSET


@pytest.mark.slow
def test_serve_prints_no_backend_messages(example_models, tmp_path):
    models, _ = example_models
    port = free_port()
    server = start_cli(
        ["serve", "--models", str(models), "--port", str(port),
         "--db", f"sqlite:///{tmp_path / 'r.sqlite3'}"],  # fmt: skip
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = server.stdout.readline()
        assert line.startswith(f"serving on http://127.0.0.1:{port}/"), line
        assert httpx.get(f"http://127.0.0.1:{port}/users/2/recommendations").status_code == 200
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=30)
    assert "Application startup complete." in stderr
    assert "Unable to initialize backend" not in stderr, stderr
