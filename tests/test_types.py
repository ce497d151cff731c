"""The type check of ``src/``: mypy with the ``[tool.mypy]`` settings of pyproject.toml.

It runs with the rest of the suite, so the README's test command (what ``.ci/run``
calls) type-checks too; marked slow (a fresh check takes tens of seconds), so CI runs
it and a local run does with ``--slow``.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_src_passes_the_type_checker():
    if importlib.util.find_spec("mypy") is None:
        message = "mypy is not installed: pip install -c constraints.txt -e '.[test]'"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(ROOT / ".mypy_cache")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
