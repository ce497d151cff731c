"""fetch_ml100k from a fake wheel built here: checksums, caching, atomic install."""

from __future__ import annotations

import hashlib
import zipfile

import pytest

from movierec.data import data_home, fetch_ml100k, load_dataset, recbole
from movierec.errors import DataError, MovierecError

FILES = {
    "ml-100k.inter": b"user_id:token\titem_id:token\trating:float\ttimestamp:float\n1\t1\t4\t5\n",
    "ml-100k.item": b"item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
    b"1\tToy Story\t1995\tAnimation Comedy\n",
    "ml-100k.user": b"user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token\n"
    b"1\t24\tM\ttechnician\t85711\n",
}


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("MOVIEREC_HOME", str(tmp_path / "home"))
    sums = {name: hashlib.sha256(data).hexdigest() for name, data in FILES.items()}
    monkeypatch.setattr(recbole, "FILE_SHA256", sums)
    return tmp_path / "home"


def fake_wheel(path, files=FILES):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("recbole/__init__.py", "")
        for name, data in files.items():
            zf.writestr(recbole.MEMBER_DIR + name, data)
    return path


def test_data_home_from_env(home):
    assert data_home() == home and home.is_dir()


def test_fetch_from_wheel_then_cached(home, tmp_path, monkeypatch):
    target = fetch_ml100k(fake_wheel(tmp_path / "recbole.whl"))
    assert target == home / "ml-100k-recbole"
    assert sorted(p.name for p in target.iterdir()) == sorted(FILES)
    assert [p.name for p in home.iterdir()] == ["ml-100k-recbole"]  # no temp dir left

    def no_download(into):
        raise AssertionError("should not download when the files are cached")

    monkeypatch.setattr(recbole, "_download_wheel", no_download)
    assert fetch_ml100k() == target
    ds = load_dataset()
    assert ds.name == "ml-100k" and ds.movies["title"].tolist() == ["Toy Story (1995)"]


def test_checksum_mismatch(home, tmp_path):
    bad = dict(FILES, **{"ml-100k.inter": FILES["ml-100k.inter"] + b"2\t1\t4\t6\n"})
    with pytest.raises(DataError, match="sha256"):
        fetch_ml100k(fake_wheel(tmp_path / "bad.whl", bad))
    assert not (home / "ml-100k-recbole").exists()
    assert list(home.iterdir()) == []


def test_a_corrupt_cache_is_extracted_again(home, tmp_path):
    target = fetch_ml100k(fake_wheel(tmp_path / "recbole.whl"))
    (target / "ml-100k.inter").write_bytes(b"garbage")
    fetch_ml100k(tmp_path / "recbole.whl")  # not verified any more: re-extracted
    assert (target / "ml-100k.inter").read_bytes() == FILES["ml-100k.inter"]


def test_force_extracts_a_verified_cache_again(home, tmp_path):
    target = fetch_ml100k(fake_wheel(tmp_path / "recbole.whl"))
    (target / "stale-extra").write_text("left by an older install")
    assert fetch_ml100k(tmp_path / "recbole.whl") == target  # verified: kept as it is
    assert (target / "stale-extra").exists()
    assert fetch_ml100k(tmp_path / "recbole.whl", force=True) == target
    assert not (target / "stale-extra").exists()  # a fresh extraction replaced it
    assert (target / "ml-100k.inter").read_bytes() == FILES["ml-100k.inter"]


def test_wheel_missing_member_or_not_zip(home, tmp_path):
    with pytest.raises(DataError, match="not in the wheel"):
        fetch_ml100k(fake_wheel(tmp_path / "x.whl", {"ml-100k.inter": b""}))
    (tmp_path / "y.whl").write_text("not a zip")
    with pytest.raises(DataError, match="zip"):
        fetch_ml100k(tmp_path / "y.whl")
    with pytest.raises(DataError, match="not found"):
        fetch_ml100k(tmp_path / "missing.whl")


def test_download_failure_is_clear(home, monkeypatch):
    class Failed:
        returncode = 1
        stdout = ""
        stderr = "ERROR: Could not find a version that satisfies the requirement"

    monkeypatch.setattr(recbole.subprocess, "run", lambda *a, **k: Failed())
    with pytest.raises(MovierecError, match="--wheel PATH"):
        fetch_ml100k()
