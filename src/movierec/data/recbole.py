"""MovieLens 100K as RecBole atomic files, taken from the recbole wheel on PyPI.

Why a wheel: PyPI is reachable wherever pip works (mirrors, proxies), the wheel
is 2 MB and pinned by hash, and it carries ml-100k as three small tab-separated
files. Only those three files are extracted; nothing from recbole is imported.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pandas as pd

from movierec.atomic import atomic_directory
from movierec.data.home import data_home, file_sha256
from movierec.data.schema import Dataset, ratings_frame
from movierec.data.text_files import (
    TableFile,
    check_known,
    check_range,
    check_unique,
    require_columns,
)
from movierec.errors import DataError, MovierecError
from movierec.progress import logger

WHEEL_REQUIREMENT = "recbole==1.2.1"
WHEEL_SHA256 = "9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407"
MEMBER_DIR = "recbole/dataset_example/ml-100k/"
FILE_SHA256 = {
    "ml-100k.inter": "4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff",
    "ml-100k.item": "51d7cdf777ce5c0f5b32c1d947a4a81fe07d75e78abbe761e0cd4d0756064532",
    "ml-100k.user": "4f670007d9cfbeb9807e757209af1555b9bcc186bde25e767f67cb67c6dd5972",
}
CACHE_DIR = "ml-100k-recbole"
UNKNOWN_GENRE = "unknown"


def fetch_ml100k(wheel: str | Path | None = None, force: bool = False) -> Path:
    """Directory holding verified ml-100k.{inter,item,user}; downloads the wheel if needed.

    Give ``wheel`` (a local recbole-1.2.1 wheel) to work offline.
    """
    target = data_home() / CACHE_DIR
    if not force and _verified(target):
        return target
    if wheel is not None:
        return _install_from_wheel(Path(wheel), target)
    with tempfile.TemporaryDirectory(prefix="movierec-wheel-") as tmp:
        logger.info(
            "fetching MovieLens 100K: pip download %s (once; cached in %s)",
            WHEEL_REQUIREMENT,
            target,
        )
        return _install_from_wheel(_download_wheel(Path(tmp)), target)


def _verified(directory: Path) -> bool:
    return all(
        (directory / name).is_file() and file_sha256(directory / name) == digest
        for name, digest in FILE_SHA256.items()
    )


def _download_wheel(into: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           WHEEL_REQUIREMENT, "-d", str(into)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(into.glob("recbole-*.whl"))
    if proc.returncode != 0 or not wheels:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise MovierecError(
            f"could not download {WHEEL_REQUIREMENT} from the package registry "
            f"({detail[-1] if detail else 'pip failed'}). If this machine is offline, download "
            f"the wheel elsewhere (pip download --no-deps {WHEEL_REQUIREMENT}) and pass it "
            "with --wheel PATH."
        )
    return wheels[0]


def _install_from_wheel(wheel: Path, target: Path) -> Path:
    """Extract the three files into a temporary directory, verify, then rename into place."""
    if not wheel.is_file():
        raise DataError("wheel file not found", path=wheel)
    # mode: mkdtemp makes the staging directory private; the cache is ordinary data
    with atomic_directory(target, mode=0o755) as tmp:
        try:
            with zipfile.ZipFile(wheel) as zf:
                for name in FILE_SHA256:
                    try:
                        data = zf.read(MEMBER_DIR + name)
                    except KeyError:
                        raise DataError(f"{MEMBER_DIR + name} is not in the wheel", wheel) from None
                    (tmp / name).write_bytes(data)
        except zipfile.BadZipFile:
            raise DataError("not a wheel (zip) file", path=wheel) from None
        for name, digest in FILE_SHA256.items():
            actual = file_sha256(tmp / name)
            if actual != digest:
                raise DataError(
                    f"{name} has sha256 {actual}, expected {digest}: the wheel is not "
                    f"{WHEEL_REQUIREMENT} (expected wheel sha256 {WHEEL_SHA256})",
                    path=wheel,
                )
    return target


# -- loading ----------------------------------------------------------------------------


def find_atomic_files(directory: Path) -> tuple[Path, Path, Path | None] | None:
    """(inter, item, user-or-None) when ``directory`` holds one ``<name>.inter`` + ``.item``."""
    inters = sorted(directory.glob("*.inter"))
    if len(inters) != 1:
        return None
    inter = inters[0]
    item = inter.with_suffix(".item")
    if not item.is_file():
        return None
    user = inter.with_suffix(".user")
    return inter, item, user if user.is_file() else None


def _table(path: Path, required: list[str], numeric: tuple[str, ...] = ()) -> TableFile:
    """A RecBole file: tab separated, header ``name:type``; columns picked by name."""
    probe = TableFile(path, (), "\t", header=True)
    probe.require()
    names = [f.split(":", 1)[0] for f in probe.header_fields()]
    require_columns(probe, names, required)
    if len(set(names)) != len(names):
        raise probe.error(f"repeated column name in header {names}", 1)
    return TableFile(path, tuple(names), "\t", header=True, numeric=numeric)


def load_recbole(directory: str | Path, name: str | None = None) -> Dataset:
    """Load RecBole atomic files (``.inter``, ``.item``, optional ``.user``)."""
    directory = Path(directory)
    found = find_atomic_files(directory)
    if found is None:
        raise DataError("no <name>.inter with a matching <name>.item found", path=directory)
    inter_path, item_path, user_path = found

    items = _table(item_path, ["item_id", "movie_title"])
    raw_items = items.read()
    check_unique(items, raw_items, ["item_id"], "movie id")
    year = (
        pd.to_numeric(raw_items["release_year"], errors="coerce").astype("Int64")
        if "release_year" in raw_items
        else pd.Series(pd.NA, index=raw_items.index, dtype="Int64")
    )
    titles = raw_items["movie_title"].str.strip()
    titles = titles.where(year.isna(), titles + " (" + year.astype(str) + ")")
    genres = raw_items["class"] if "class" in raw_items else pd.Series("", index=raw_items.index)
    movies = pd.DataFrame(
        {
            "movie_id": raw_items["item_id"].astype(str),
            "title": titles.astype(str),
            "year": year,
            "genres": [_genres(g) for g in genres],
        }
    )

    users = None
    if user_path is not None:
        user_table = _table(user_path, ["user_id"])
        raw_users = user_table.read()
        check_unique(user_table, raw_users, ["user_id"], "user id")
        users = pd.DataFrame(
            {
                "user_id": raw_users["user_id"].astype(str),
                "age": _column(raw_users, "age", numeric=True),
                "gender": _column(raw_users, "gender"),
                "occupation": _column(raw_users, "occupation"),
                "zip": _column(raw_users, "zip_code"),
            }
        )

    inter = _table(inter_path, ["user_id", "item_id", "rating", "timestamp"],
                   numeric=("rating", "timestamp"))
    raw = inter.read(fast=True)
    ratings = ratings_frame(raw["user_id"], raw["item_id"], raw["rating"], raw["timestamp"])
    check_range(inter, ratings, "rating", 1.0, 5.0)
    check_unique(inter, ratings, ["user_id", "movie_id"], "rating of (user, movie)")
    check_known(inter, ratings, "movie_id", movies["movie_id"], "movie")
    if users is not None:
        check_known(inter, ratings, "user_id", users["user_id"], "user")
    return Dataset(
        name=name or inter_path.stem,
        ratings=ratings,
        movies=movies,
        users=users,
        rating_scale=(1.0, 5.0),
        source={
            "kind": "recbole",
            "path": str(directory),
            "ratings_file": inter_path.name,
            "ratings_sha256": file_sha256(inter_path),
        },
    )


def _genres(text: str) -> list[str]:
    """RecBole token_seq: space separated, so "Children's" and "Sci-Fi" stay whole."""
    return [g for g in re.split(r"\s+", text.strip()) if g and g != UNKNOWN_GENRE]


def _column(frame: pd.DataFrame, name: str, numeric: bool = False) -> pd.Series:
    if name not in frame:
        return pd.Series(pd.NA if numeric else "", index=frame.index,
                         dtype="Int64" if numeric else str)
    if numeric:
        return pd.to_numeric(frame[name], errors="coerce").astype("Int64")
    return frame[name].astype(str)
