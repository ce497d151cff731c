"""Optional extras: a missing one is named with its pip line, never a traceback."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from movierec.cli.main import main
from movierec.extras import MissingExtraError, require

ROOT = Path(__file__).resolve().parents[1]


def test_core_install_leaves_service_and_faiss_to_extras():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = " ".join(project["dependencies"])
    for package in ("fastapi", "uvicorn", "sqlalchemy", "faiss"):
        assert package not in core
    extras = project["optional-dependencies"]
    assert {"fastapi", "uvicorn", "sqlalchemy"} <= {d.split(">")[0] for d in extras["serve"]}
    assert any(d.startswith("faiss-cpu") for d in extras["ann"])
    assert "movierec[serve,ann]" in extras["test"]


def test_missing_module_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)  # import faiss now raises ImportError
    with pytest.raises(MissingExtraError, match=r"pip install 'movierec\[ann\]'"):
        require("faiss", "a faiss index")
    from movierec.retrieval.index import make_index

    with pytest.raises(MissingExtraError, match="a faiss index needs faiss-cpu"):
        make_index("faiss-hnsw").build(np.eye(8, dtype=np.float32))


def test_serve_without_the_extra_is_one_clear_error(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "fastapi", None)
    assert main(["serve", "--models", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "movierec serve needs fastapi" in err and "pip install 'movierec[serve]'" in err


def test_core_alone_trains_evaluates_and_recommends(tmp_path):
    """With the extras' packages unimportable, the core commands still work."""
    import subprocess

    from movierec.testing import make_planted_dataset, write_ml_latest

    data = write_ml_latest(make_planted_dataset(), tmp_path / "data")
    models = tmp_path / "models"
    code = f"""
import sys
for name in ("fastapi", "uvicorn", "sqlalchemy", "faiss", "starlette"):
    sys.modules[name] = None
from movierec.cli.main import main
m = ["--models", {str(models)!r}]
assert main(["train", "--model", "example", "--data", {str(data)!r}, "--epochs", "2",
             "--quiet", *m]) == 0
assert main(["evaluate", *m]) == 0
assert main(["recommend", "--user", "2", *m]) == 0
assert main(["similar", "--movie", "1", *m]) == 0
print("core ok")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "core ok" in done.stdout
