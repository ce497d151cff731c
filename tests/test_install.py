"""Installs that reproduce: the README's two commands and CI resolve the same versions."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, sep, version = line.partition("==")
            assert sep, f"constraints.txt pins exact versions, got {line!r}"
            pins[name.strip().lower().replace("_", "-")] = version.strip()
    return pins


def _readme_commands() -> list[str]:
    block = (ROOT / "README.md").read_text().split("```bash", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip() and not line.startswith("#")]


def test_both_readme_commands_install_with_the_constraints() -> None:
    commands = _readme_commands()
    assert len(commands) == 2
    for command in commands:
        assert command.startswith("pip install -c constraints.txt "), command


def test_ci_runs_the_readmes_test_command() -> None:
    test_command = _readme_commands()[1]
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_command in ci


def test_constraints_pin_every_direct_dependency_and_a_pytest_schemathesis_supports() -> None:
    pins = _pins()
    pyproject = (ROOT / "pyproject.toml").read_text()
    block = pyproject.split("dependencies = [", 1)[1].split("]", 1)[0]
    direct = re.findall(r'"([A-Za-z0-9_.-]+)', block)
    assert direct, "no dependencies found in pyproject.toml"
    for name in direct:
        assert name.lower().replace("_", "-") in pins, f"{name} is not pinned in constraints.txt"
    major, minor = (int(part) for part in pins["pytest"].split(".")[:2])
    assert (major, minor) < (9, 2), "schemathesis 4.32 breaks on pytest 9.2"
    assert "pytest>=8,<9.2" in pyproject
