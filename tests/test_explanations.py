"""Explanations are true: the ratings named behind a recommendation are the ones that raised
its score, and ``similar`` says what two movies share.

The score is recomputed here from the models' own query towers and ranker (never through
the explanation code), with the named ratings taken out of the history; it must fall
further than when three other rated movies are taken out at random.
"""

from __future__ import annotations

import numpy as np
import pytest

from movierec.models.base import QueryBatch, Retriever
from movierec.pipeline import MAX_REASONS
from movierec.pipeline import Recommender as Engine
from movierec.retrieval.model_index import candidate_matrix

RANDOM_DRAWS = 20


def blended_score(engine: Engine, user_id: str | None, ratings: dict[str, float], movie: str):
    """What the list is ordered by, for one movie and a given history: the retrieval
    query's dot product with the movie plus star_weight x the ranker's stars."""
    retrieval = engine.retrieval.train
    user = retrieval.users.index(user_id) if user_id is not None else 0
    ids = list(ratings)
    stars = np.array([ratings[m] for m in ids], np.float32)
    query = QueryBatch(np.array([user]), [retrieval.movies.lookup(ids).astype(np.int32)], [stars])
    vector = engine.retrieval.retriever.query_embeddings(query)[0]
    score = float(vector @ candidate_matrix(engine.retrieval)[retrieval.movies.index(movie)])
    if engine.ranking is not None:
        ranking = engine.ranking.train
        user = ranking.users.index(user_id) if user_id is not None else 0
        query = QueryBatch(np.array([user]), [ranking.movies.lookup(ids).astype(np.int32)], [stars])
        predicted = engine.ranking.ranker.predict(query, ranking.movies.lookup([movie]))
        score += engine.star_weight * float(predicted[0])
    return score


def history_of(engine: Engine, user_id: str) -> dict[str, float]:
    """A known user's training ratings, movie id to stars."""
    return {r.movie_id: float(r.predicted_rating) for r in engine.training_ratings(user_id)}


def faithfulness(engine: Engine, users: list[str], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """For each user's top recommendation: the score's fall without the named ratings,
    and its mean fall without three other rated movies drawn at random."""
    rng = np.random.default_rng(seed)
    named_drops, random_drops = [], []
    for user in users:
        [top] = engine.recommend(user, k=1, explain=True).items
        history = history_of(engine, user)
        named = [r.movie_id for r in top.because]
        assert named, f"user {user}: no reason for {top.movie_id}"
        assert set(named) <= set(history)
        full = blended_score(engine, user, history, top.movie_id)
        without = {m: s for m, s in history.items() if m not in named}
        named_drops.append(full - blended_score(engine, user, without, top.movie_id))
        others = [m for m in history if m not in named]
        drops = []
        for _ in range(RANDOM_DRAWS):
            left_out = set(rng.choice(others, len(named), replace=False))
            kept = {m: s for m, s in history.items() if m not in left_out}
            drops.append(full - blended_score(engine, user, kept, top.movie_id))
        random_drops.append(float(np.mean(drops)))
    return np.array(named_drops), np.array(random_drops)


@pytest.fixture(scope="module")
def engine(planted_two_stage) -> Engine:
    return planted_two_stage.engine


def test_removing_the_named_ratings_lowers_the_score_more_than_random_ones(engine):
    users = [str(u) for u in range(1, 31)]
    named, random = faithfulness(engine, users)
    assert np.all(named > 0)
    assert np.mean(named > random) >= 0.9
    assert named.mean() > 1.5 * random.mean()


def test_each_contribution_is_the_fall_of_the_score_without_that_rating(engine):
    for user in ("2", "7"):
        history = history_of(engine, user)
        answer = engine.recommend(user, k=5, explain=True)
        assert "explain" in answer.timings_ms
        for item in answer.items:
            assert 1 <= len(item.because) <= MAX_REASONS
            contributions = [r.contribution for r in item.because]
            assert contributions == sorted(contributions, reverse=True)
            full = blended_score(engine, user, history, item.movie_id)
            for reason in item.because:
                assert reason.rating == history[reason.movie_id]
                assert reason.title == engine.movie(reason.movie_id).title
                kept = {m: s for m, s in history.items() if m != reason.movie_id}
                fall = full - blended_score(engine, user, kept, item.movie_id)
                assert reason.contribution == pytest.approx(fall, rel=1e-3, abs=1e-4)


def test_a_visitor_is_explained_by_their_own_ratings(engine):
    # A visitor with a few ratings takes the short-history path; one liked and one
    # disliked taste: only the liked ratings can raise a recommendation.
    ratings = {"1": 5.0, "2": 5.0, "3": 4.0, "40": 1.0, "45": 1.0}
    answer = engine.recommend(None, k=5, extra_ratings=list(ratings.items()), explain=True)
    for item in answer.items:
        assert item.because, item.movie_id
        full = blended_score(engine, None, ratings, item.movie_id)
        for reason in item.because:
            assert reason.rating == ratings[reason.movie_id]
            kept = {m: s for m, s in ratings.items() if m != reason.movie_id}
            fall = full - blended_score(engine, None, kept, item.movie_id)
            assert reason.contribution == pytest.approx(fall, rel=1e-3, abs=1e-4)


def test_the_two_towers_shortcut_equals_reading_every_shortened_history(engine):
    retriever = engine.retrieval.retriever
    train = engine.retrieval.train
    candidates = candidate_matrix(engine.retrieval)
    for user in (1, 5, 9):
        query = QueryBatch.from_training(train, np.array([user]))
        fast = retriever.leave_one_out_embeddings(query) @ candidates.T
        general = Retriever.leave_one_out_embeddings(retriever, query) @ candidates.T
        assert np.abs(fast - general).max() < 1e-4 * np.abs(general).max()


def test_without_explain_there_are_no_reasons_and_the_list_is_the_same(engine):
    plain = engine.recommend("4", k=10)
    explained = engine.recommend("4", k=10, explain=True)
    assert [m.movie_id for m in plain.items] == [m.movie_id for m in explained.items]
    assert all(m.because is None for m in plain.items)
    assert "explain" not in plain.timings_ms


def test_a_model_that_ignores_the_history_names_no_rating(example_pair):
    # The keras-rs example models read the user's id only: no rating moves a score.
    engine = Engine.load(example_pair[0])
    answer = engine.recommend("3", k=5, explain=True)
    assert [m.because for m in answer.items] == [[]] * 5


def test_the_python_api_adds_a_because_column(planted_two_stage):
    frame = planted_two_stage.recommend("2", k=3, explain=True)
    assert "because" in frame.columns
    first = frame["because"].iloc[0][0]
    assert set(first) == {"movie_id", "title", "rating", "contribution"}
    assert "because" not in planted_two_stage.recommend("2", k=3).columns
    visitor = planted_two_stage.recommend_for_ratings({"1": 5.0, "2": 4.0}, k=2, explain=True)
    assert {r["movie_id"] for reasons in visitor["because"] for r in reasons} <= {"1", "2"}


def test_similar_says_how_many_rated_both_and_which_genres_they_share(engine):
    ratings = engine.retrieval.train.dataset.ratings
    raters = ratings.groupby("movie_id")["user_id"].apply(set)
    genres = engine.catalogue.set_index("movie_id")["genres"]
    for movie in ("1", "35"):
        results = engine.similar(movie, k=8)
        assert any(r.co_raters > 0 for r in results)
        for result in results:
            assert result.co_raters == len(raters[movie] & raters[result.movie_id])
            assert result.shared_genres == [
                g for g in genres[result.movie_id] if g in set(genres[movie])
            ]


def test_the_command_line_prints_the_reasons(planted_two_stage, tmp_path, capsys):
    import json

    from movierec.cli.main import main

    models = str(planted_two_stage.save(tmp_path / "models"))
    assert main(["recommend", "--user", "2", "-k", "2", "--explain", "--models", models]) == 0
    out = capsys.readouterr().out
    assert "because = your ratings that raised" in out
    assert out.count("you rated Planted") == 2
    assert main(["recommend", "--user", "2", "-k", "2", "--explain", "--json", "--models",
                 models]) == 0  # fmt: skip
    rows = json.loads(capsys.readouterr().out)
    assert all(1 <= len(row["because"]) <= MAX_REASONS for row in rows)
    assert main(["similar", "--movie", "1", "-k", "2", "--json", "--models", models]) == 0
    assert all(isinstance(row["co_raters"], int) for row in json.loads(capsys.readouterr().out))
