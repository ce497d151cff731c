"""benchmarks/sasrec_peer.py without RecBole: how it reads train.csv and writes RecBole's
atomic file (history order, ties by movie id), and its clear exits on bad input."""

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
import sasrec_peer  # noqa: E402  (imports RecBole only inside main)


def write_csv(path: Path, rows: list[str], header="user_id,movie_id,rating,timestamp") -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_histories_are_ordered_by_time_then_numeric_movie_id(tmp_path):
    train = write_csv(
        tmp_path / "train.csv",
        [
            "7,10,4.0,300",
            "7,9,5.0,200",
            "7,100,3.0,200",
            "7,20,1.0,200",
            "8,5,2.0,50",
        ],
    )
    histories = sasrec_peer.read_train(train)
    # 9 < 20 < 100 as numbers (as make_split breaks ties), not as strings ("100" < "20")
    assert [movie for _, movie, _ in histories["7"]] == ["9", "20", "100", "10"]
    assert [movie for _, movie, _ in histories["8"]] == ["5"]


def test_atomic_file_has_recbole_header_and_positions_as_timestamps(tmp_path):
    train = write_csv(tmp_path / "train.csv", ["7,10,4.0,300", "7,9,5.0,200", "8,5,2.0,50"])
    sasrec_peer.write_atomic_files(sasrec_peer.read_train(train), tmp_path / "data")
    lines = (tmp_path / "data" / f"{sasrec_peer.DATASET}.inter").read_text().splitlines()
    assert lines[0].split("\t") == [
        "user_id:token",
        "item_id:token",
        "rating:float",
        "timestamp:float",
    ]
    assert [line.split("\t") for line in lines[1:]] == [
        ["7", "9", "5.0", "0"],
        ["7", "10", "4.0", "1"],
        ["8", "5", "2.0", "0"],
    ]


@pytest.mark.parametrize(
    ("rows", "header", "message"),
    [
        (["7,10,4.0,300"], "user_id,movie_id,rating", "lacks the column(s) timestamp"),
        (["7,10,four,300"], "user_id,movie_id,rating,timestamp", "must be numbers"),
        (["7,1 0,4.0,300"], "user_id,movie_id,rating,timestamp", "without spaces or tabs"),
        ([], "user_id,movie_id,rating,timestamp", "has no ratings"),
    ],
)
def test_bad_train_csv_exits_with_a_message_not_a_traceback(tmp_path, rows, header, message):
    train = write_csv(tmp_path / "train.csv", rows, header)
    (tmp_path / "users.txt").write_text("7\n")
    done = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / "sasrec_peer.py"),
            "--train",
            str(train),
            "--users",
            str(tmp_path / "users.txt"),
            "--out",
            str(tmp_path / "ranked.json"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "ranked.json").exists()
