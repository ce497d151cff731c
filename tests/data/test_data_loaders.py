"""Every loader on small files written here, including malformed ones (line numbers asserted)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from movierec.data import load_dataset
from movierec.data.grouplens import ML100K_GENRES
from movierec.errors import DataError

# -- writers ------------------------------------------------------------------------------

INTER = [
    "user_id:token\titem_id:token\trating:float\ttimestamp:float",
    "1\t10\t3\t881250949",
    "1\t20\t5\t881250950",
    "2\t10\t1\t881250951",
]
ITEM = [
    "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq",
    "10\tToy Story\t1995\tAnimation Children's Comedy",
    "20\tBlade Runner\t1982\tFilm-Noir Sci-Fi",
    "30\tunkonwn\tunkonwn\tunknown",
]
USER = [
    "user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token",
    "1\t24\tM\ttechnician\t85711",
    "2\t53\tF\tother\t94043",
]


def write(path: Path, lines: list[str], encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding=encoding)
    return path


def recbole_dir(tmp_path: Path, inter=INTER, item=ITEM, user=USER) -> Path:
    d = tmp_path / "rb"
    write(d / "ml-100k.inter", inter)
    write(d / "ml-100k.item", item)
    if user is not None:
        write(d / "ml-100k.user", user)
    return d


def ml100k_dir(tmp_path: Path, data=None, item=None) -> Path:
    d = tmp_path / "ml-100k"
    flags = ["0"] * len(ML100K_GENRES)
    toy = flags.copy()
    toy[ML100K_GENRES.index("Animation")] = toy[ML100K_GENRES.index("Children's")] = "1"
    unknown = flags.copy()
    unknown[0] = "1"
    item = item or [
        "1|Toy Story (1995)|01-Jan-1995||http://x|" + "|".join(toy),
        "2|Café Society|01-Jan-1997||http://x|" + "|".join(flags),
        "3|unknown|||http://x|" + "|".join(unknown),
    ]
    write(d / "u.item", item, encoding="latin-1")
    write(d / "u.data", data or ["1\t1\t5\t874965758", "1\t2\t3\t876893171", "2\t1\t4\t878542960"])
    write(d / "u.user", ["1|24|M|technician|85711", "2|53|F|other|94043"])
    return d


def ml1m_dir(tmp_path: Path, ratings=None, users=True) -> Path:
    d = tmp_path / "ml-1m"
    write(d / "movies.dat", ["1::Toy Story (1995)::Animation|Children's|Comedy",
                             "2::Star Wars: Episode IV - A New Hope (1977)::Action|Sci-Fi"],
          encoding="latin-1")
    write(d / "ratings.dat", ratings or ["1::1::5::978300760", "2::2::3::978302109"])
    if users:
        write(d / "users.dat", ["1::F::1::10::48067", "2::M::56::16::70072"])
    return d


def latest_dir(tmp_path: Path, ratings=None, movies=None) -> Path:
    d = tmp_path / "ml-latest-small"
    write(d / "movies.csv", movies or [
        "movieId,title,genres",
        "1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy",
        '11,"American President, The (1995)",Comedy|Drama|Romance',
        "209171,Women of Devil's Island,(no genres listed)",
    ])
    write(d / "ratings.csv", ratings or [
        "userId,movieId,rating,timestamp",
        "1,1,4.0,964982703",
        "1,11,0.5,964981247",
        "7,209171,3.5,964982224",
    ])
    return d


def assert_data_error(source: Path, file_name: str, line: int | None, *words: str) -> DataError:
    with pytest.raises(DataError) as info:
        load_dataset(source)
    err = info.value
    assert err.path is not None and Path(err.path).name == file_name, str(err)
    assert err.line == line, str(err)
    for word in words:
        assert word in str(err), str(err)
    return err


# -- RecBole --------------------------------------------------------------------------------


def test_recbole_loads_normalised(tmp_path):
    ds = load_dataset(recbole_dir(tmp_path))
    assert ds.name == "ml-100k"
    assert list(ds.ratings.columns) == ["user_id", "movie_id", "rating", "timestamp"]
    assert ds.ratings["user_id"].tolist() == ["1", "1", "2"]
    assert str(ds.ratings["rating"].dtype) == "float32"
    assert str(ds.ratings["timestamp"].dtype) == "int64"
    movies = ds.movies.set_index("movie_id")
    assert movies.loc["10", "title"] == "Toy Story (1995)"
    assert movies.loc["10", "genres"] == ["Animation", "Children's", "Comedy"]
    assert movies.loc["20", "genres"] == ["Film-Noir", "Sci-Fi"]
    assert movies.loc["30", "genres"] == []
    assert movies.loc["30", "title"] == "unkonwn" and ds.movies["year"].isna().sum() == 1
    assert ds.users is not None and ds.users["age"].tolist() == [24, 53]
    assert ds.source["kind"] == "recbole" and len(ds.source["ratings_sha256"]) == 64


def test_recbole_without_users(tmp_path):
    ds = load_dataset(recbole_dir(tmp_path, user=None))
    assert ds.users is None and len(ds.ratings) == 3


def test_recbole_missing_column(tmp_path):
    inter = ["user_id:token\titem_id:token\ttimestamp:float"] + ["1\t10\t881250949"]
    assert_data_error(recbole_dir(tmp_path, inter=inter), "ml-100k.inter", 1, "rating")


def test_recbole_non_numeric_rating(tmp_path):
    inter = INTER[:3] + ["2\t10\tgood\t881250951"]
    assert_data_error(recbole_dir(tmp_path, inter=inter), "ml-100k.inter", 4, "'good'")


def test_recbole_rating_off_scale(tmp_path):
    inter = INTER[:2] + ["1\t20\t7\t881250950"] + INTER[3:]
    assert_data_error(recbole_dir(tmp_path, inter=inter), "ml-100k.inter", 3, "scale")


def test_recbole_wrong_field_count(tmp_path):
    inter = INTER[:2] + ["1\t20\t5"] + INTER[3:]
    assert_data_error(recbole_dir(tmp_path, inter=inter), "ml-100k.inter", 3, "expected 4")
    inter = INTER[:2] + ["1\t20\t5\t881250950\textra"] + INTER[3:]
    assert_data_error(recbole_dir(tmp_path, inter=inter), "ml-100k.inter", 3, "found 5")


def test_recbole_duplicate_movie(tmp_path):
    item = ITEM + ["20\tAgain\t1990\tDrama"]
    err = assert_data_error(recbole_dir(tmp_path, item=item), "ml-100k.item", 5, "duplicate")
    assert "line 3" in str(err)  # where the first copy is


def test_recbole_unknown_movie_in_ratings(tmp_path):
    inter = INTER + ["2\t99\t4\t881250952"]
    assert_data_error(recbole_dir(tmp_path, inter=inter), "ml-100k.inter", 5, "'99'")


def test_blank_lines_are_counted(tmp_path):
    inter = INTER[:2] + [""] + INTER[2:] + ["2\t20\t9\t1"]
    assert_data_error(recbole_dir(tmp_path, inter=inter), "ml-100k.inter", 6, "scale")


# -- GroupLens ml-100k ----------------------------------------------------------------------


def test_ml100k_grouplens(tmp_path):
    ds = load_dataset(ml100k_dir(tmp_path))
    assert ds.source["kind"] == "grouplens-ml-100k"
    movies = ds.movies.set_index("movie_id")
    assert movies.loc["1", "genres"] == ["Animation", "Children's"]
    assert movies.loc["1", "title"] == "Toy Story (1995)" and movies.loc["1", "year"] == 1995
    assert movies.loc["2", "title"] == "Café Society (1997)"  # year from the release date
    assert movies.loc["3", "genres"] == [] and movies["year"].isna().sum() == 1
    assert ds.users["occupation"].tolist() == ["technician", "other"]
    assert ds.ratings["rating"].tolist() == [5.0, 3.0, 4.0]


def test_ml100k_wrong_field_count(tmp_path):
    data = ["1\t1\t5\t874965758", "1\t2\t3\t876893171", "2\t1 4\t878542960"]
    assert_data_error(ml100k_dir(tmp_path, data=data), "u.data", 3, "expected 4")


def test_ml100k_item_wrong_field_count(tmp_path):
    item = ["1|Toy Story (1995)|01-Jan-1995||http://x|0|1"]
    assert_data_error(ml100k_dir(tmp_path, item=item), "u.item", 1, "expected 24")


# -- GroupLens ml-1m ------------------------------------------------------------------------


def test_ml1m(tmp_path):
    ds = load_dataset(ml1m_dir(tmp_path))
    assert ds.source["kind"] == "grouplens-ml-1m" and ds.rating_scale == (1.0, 5.0)
    movies = ds.movies.set_index("movie_id")
    assert movies.loc["2", "title"] == "Star Wars: Episode IV - A New Hope (1977)"
    assert movies.loc["2", "year"] == 1977 and movies.loc["1", "genres"][1] == "Children's"
    users = ds.users.set_index("user_id")
    assert users.loc["1", "age"] == 1 and users.loc["1", "occupation"] == "K-12 student"
    assert users.loc["2", "occupation"] == "self-employed" and users.loc["2", "gender"] == "M"


def test_ml1m_non_numeric_timestamp(tmp_path):
    ratings = ["1::1::5::978300760", "2::2::3::yesterday"]
    assert_data_error(ml1m_dir(tmp_path, ratings=ratings), "ratings.dat", 2, "timestamp")


def test_ml10m_style_has_half_stars(tmp_path):
    ds = load_dataset(ml1m_dir(tmp_path, ratings=["1::1::4.5::978300760"], users=False))
    assert ds.users is None and ds.rating_scale == (0.5, 5.0)


# -- GroupLens ml-latest --------------------------------------------------------------------


def test_ml_latest(tmp_path):
    ds = load_dataset(latest_dir(tmp_path))
    assert ds.name == "ml-latest-small" and ds.users is None
    movies = ds.movies.set_index("movie_id")
    assert movies.loc["11", "title"] == "American President, The (1995)"
    assert movies.loc["209171", "genres"] == [] and pd.isna(movies.loc["209171", "year"])
    assert ds.ratings["rating"].tolist() == [4.0, 0.5, 3.5]


def test_ml_latest_off_scale_counts_header(tmp_path):
    ratings = ["userId,movieId,rating,timestamp", "1,1,4.0,964982703", "1,11,0.0,964981247"]
    assert_data_error(latest_dir(tmp_path, ratings=ratings), "ratings.csv", 3, "0.5-5")


def test_ml_latest_wrong_header(tmp_path):
    ratings = ["user,movieId,rating,timestamp", "1,1,4.0,964982703"]
    assert_data_error(latest_dir(tmp_path, ratings=ratings), "ratings.csv", 1, "userId")


def test_ml_latest_duplicate_movie(tmp_path):
    movies = ["movieId,title,genres", "1,A (1995),Drama", "2,B (1996),Drama", "1,C,Drama"]
    assert_data_error(latest_dir(tmp_path, movies=movies), "movies.csv", 4, "duplicate")


# -- detection ------------------------------------------------------------------------------


def test_unrecognised_directory(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match="no recognisable"):
        load_dataset(tmp_path)


def test_missing_directory(tmp_path):
    with pytest.raises(DataError, match="no such"):
        load_dataset(tmp_path / "nope")


def test_missing_movies_file_is_not_recognised(tmp_path):
    d = tmp_path / "half"
    write(d / "ratings.csv", ["userId,movieId,rating,timestamp"])
    with pytest.raises(DataError, match="no recognisable"):
        load_dataset(d)


def test_archive_unpacked_one_level_up(tmp_path):
    latest_dir(tmp_path)
    assert load_dataset(tmp_path).name == "ml-latest-small"
