"""The one write-then-rename helper: a file or directory is whole or absent."""

from __future__ import annotations

import pytest

from movierec.atomic import atomic_directory, atomic_file, write_json


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "model.keras"
    write_json(path, {"version": 1})
    with pytest.raises(RuntimeError), atomic_file(path) as tmp:
        assert tmp.suffix == ".keras" and tmp.parent == tmp_path
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert path.read_text() == '{"version": 1}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["model.keras"]
    with atomic_file(path) as tmp:
        tmp.write_text("whole")
    assert path.read_text() == "whole" and len(list(tmp_path.iterdir())) == 1


def test_a_directory_is_swapped_in_only_when_complete(tmp_path):
    target = tmp_path / "models"
    with atomic_directory(target) as staging:
        (staging / "a").write_text("1")
    with pytest.raises(RuntimeError), atomic_directory(target) as staging:
        (staging / "a").write_text("2")
        raise RuntimeError("interrupted")
    assert (target / "a").read_text() == "1"
    with atomic_directory(target, mode=0o755) as staging:
        (staging / "b").write_text("3")
    assert sorted(p.name for p in target.iterdir()) == ["b"]
    assert target.stat().st_mode & 0o777 == 0o755
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models"]
