"""What each ``movierec`` subcommand does, given parsed arguments."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from movierec.cli.output import print_json, print_metrics, print_table
from movierec.errors import MovierecError
from movierec.progress import keras_verbosity, logger

#: The columns of every movie table; each heading is the key the JSON answers use.
MOVIE_COLUMNS = ["movie_id", "title", "genres"]
#: Most answers -k and --limit may ask for.
MAX_COUNT = 1000


def run(args: argparse.Namespace) -> int:
    """Run the parsed command; its exit code."""
    handler = {
        "data": _data,
        "train": _train,
        "evaluate": _evaluate,
        "recommend": _recommend,
        "rank": _rank,
        "similar": _similar,
        "search": _search,
        "serve": _serve,
        "index": _index,
    }[args.command]
    return handler(args)


# -- data -------------------------------------------------------------------------


def _data(args: argparse.Namespace) -> int:
    from movierec.data import fetch_ml100k, load_dataset

    if args.data_command == "fetch":
        path = fetch_ml100k(wheel=args.wheel, force=args.force)
        print(f"MovieLens 100K ready in {path}")
        return 0
    if args.data_command == "synth":
        return _synth(args)
    if args.data_command == "expand":
        return _expand(args)
    summary = load_dataset(args.data).describe()
    if args.json:
        print_json(summary)
    else:
        _print_data_info(summary)
    return 0


def _print_data_info(summary: dict[str, Any]) -> None:
    """``data info`` for people: counts with thousands separators, dates, the source."""
    import datetime

    def day(seconds: int | None) -> str:
        if seconds is None:
            return "-"
        return datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%d")

    low, high = summary["rating_scale"]
    source = summary.get("source") or {}
    rows = [
        ("ratings", f"{summary['ratings']:,}, {low:g} to {high:g} stars"),
        ("users", f"{summary['users']:,}"
         + (" (with age, gender, occupation, zip)" if summary["has_user_features"] else "")),
        ("movies", f"{summary['movies']:,} in the catalogue, {summary['movies_rated']:,} rated"),
        ("rated between", f"{day(summary['first_timestamp'])} and "
                          f"{day(summary['last_timestamp'])}"),
        ("source", ", ".join(str(source[k]) for k in ("kind", "path") if source.get(k)) or "-"),
    ]
    if source.get("ratings_sha256"):
        rows.append(("ratings sha256", str(source["ratings_sha256"])))
    print(f"data set {summary['name']}")
    for label, value in rows:
        print(f"  {label:<15} {value}")


def _synth(args: argparse.Namespace) -> int:
    """Streams chunk by chunk, so memory stays small however many ratings are asked for."""
    import time

    from movierec.data.parquet_format import write_parquet_shards
    from movierec.data.synth import SyntheticGenerator

    started = time.perf_counter()
    generator = SyntheticGenerator(args.users, args.movies, args.ratings, args.seed)
    meta = write_parquet_shards(generator, args.out, shard_size=args.shard_size)
    sizes = meta["sizes"]
    print(
        f"wrote {sizes['ratings']} ratings ({sizes['users']} users, {sizes['movies']} movies) "
        f"in {len(meta['shards'])} shard(s) to {args.out} "
        f"in {time.perf_counter() - started:.1f} s; train with --data {args.out}"
    )
    return 0


def _expand(args: argparse.Namespace) -> int:
    """Streams a few user copies at a time into a staging directory swapped in at the end."""
    import time

    from movierec.data import load_dataset
    from movierec.data.expand import FractalExpansion, write_expansion

    if args.shard_size < 1:
        raise MovierecError("--shard-size must be 1 or more")
    started = time.perf_counter()
    expansion = FractalExpansion(
        load_dataset(args.data),
        args.user_multiplier,
        args.movie_multiplier,
        ratings=args.ratings,
        seed=args.seed,
    )
    meta = write_expansion(expansion, args.out, shard_size=args.shard_size)
    sizes = meta["sizes"]
    users = expansion.user_copies * expansion.m
    print(
        f"wrote {sizes['ratings']} ratings ({users} users, {sizes['movies']} movies) "
        f"in {len(meta['shards'])} shard(s) to {args.out} "
        f"in {time.perf_counter() - started:.1f} s; train with --data {args.out}"
    )
    return 0


# -- training and evaluation ------------------------------------------------------


def _parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs; a VALUE that is not JSON is taken as a string (the model's
    settings class then says whether a string is what that setting takes)."""
    settings: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise MovierecError(f"--set expects KEY=VALUE, got {pair!r}")
        try:
            settings[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            settings[key.strip()] = raw
    return settings


def _model_names(args: argparse.Namespace, kinds: list[str]) -> dict[str, str]:
    from movierec.models.registry import DEFAULT_RANKER, DEFAULT_RETRIEVER

    defaults = {"retrieval": DEFAULT_RETRIEVER, "ranking": DEFAULT_RANKER}
    return {kind: args.model or defaults[kind] for kind in kinds}


def _settings_per_model(
    names: dict[str, str], overrides: dict[str, Any], seed: int | None
) -> dict[str, dict[str, Any]]:
    """Each model's overrides, checked before anything trains.

    With both kinds, a key goes to the models that have it; a key no model has is an
    error listing the valid ones.
    """
    from movierec.models.registry import model_class

    classes = {kind: model_class(kind, name) for kind, name in names.items()}
    per_model: dict[str, dict[str, Any]] = {}
    for kind, cls in classes.items():
        known = cls.default_settings()
        mine = overrides if len(classes) == 1 else {
            k: v for k, v in overrides.items() if k in known
        }
        settings = {**({"seed": seed} if seed is not None and "seed" in known else {}), **mine}
        checked = cls(**settings).settings  # names, types, ranges: SettingsError, exit 2
        logger.debug("%s '%s' settings: %s", kind, names[kind], json.dumps(checked))
        per_model[kind] = settings
    everywhere = set().union(*(cls.default_settings() for cls in classes.values()))
    unknown = [k for k in overrides if k not in everywhere]
    if unknown:
        valid = ", ".join(sorted(everywhere))
        raise MovierecError(f"no model here has a setting {unknown[0]!r}; valid settings: {valid}")
    return per_model


def _help_settings(args: argparse.Namespace) -> int:
    """``train --help-settings [MODEL]``: every setting with type, default, range and help."""
    from movierec.models.registry import RANKERS, RETRIEVERS, model_class

    kinds = ["retrieval", "ranking"] if args.kind == "all" else [args.kind]
    if args.help_settings:
        tables = {"retrieval": RETRIEVERS, "ranking": RANKERS}
        names = {k: args.help_settings for k in kinds if args.help_settings in tables[k]}
        if not names:
            choices = sorted({n for k in kinds for n in tables[k]})
            raise MovierecError(
                f"unknown model {args.help_settings!r}; choose from {', '.join(choices)}"
            )
    else:
        names = _model_names(args, kinds)
    for i, (kind, name) in enumerate(names.items()):
        cls = model_class(kind, name)
        if i:
            print()
        print(f"{kind} model '{name}' settings (movierec train {kind} --model {name} "
              f"--set KEY=VALUE, values in JSON):")
        if cls.settings_class is not None:
            print(cls.settings_class.describe())
        else:
            for key, value in cls.default_settings().items():
                print(f"  {key} = {json.dumps(value)}")
    if not args.help_settings:
        from movierec.feedback import FeedbackSettings

        print()
        print("stored feedback settings (movierec train --ratings-db URL --set KEY=VALUE; "
              "answers from the trained models use the same):")
        print(FeedbackSettings.describe())
    return 0


def _feedback_settings(args: argparse.Namespace, overrides: dict[str, Any]):
    """The ``feedback_*`` settings among ``overrides`` (taken out of them), checked."""
    from movierec.feedback import FeedbackSettings

    mine = {k: overrides.pop(k) for k in list(overrides) if k in FeedbackSettings.names()}
    if mine and not args.ratings_db:
        raise MovierecError(
            f"--set {next(iter(mine))} weighs stored feedback: add --ratings-db URL"
        )
    return FeedbackSettings(**FeedbackSettings.check(mine))


def _train_options(args: argparse.Namespace, kind: str, streamed: bool):
    """Checkpoint and resume settings of ``train`` for the ``kind`` model, checked (None
    when there are none). ``train all`` checkpoints the retriever in ``DIR/retrieval``
    and the ranker in ``DIR``: both write ``state.npz``."""
    from movierec.ranking.trainer import TrainOptions

    directory = args.resume or args.checkpoint_dir
    steps = args.checkpoint_steps
    if steps is not None and steps < 0:
        raise MovierecError("--checkpoint-steps must be 0 or more")
    if args.resume and args.checkpoint_dir:
        if Path(args.resume) != Path(args.checkpoint_dir):
            raise MovierecError("--resume DIR checkpoints into DIR; drop --checkpoint-dir")
    if directory is None:
        if steps:
            raise MovierecError("--checkpoint-steps needs --checkpoint-dir")
        return None
    if steps is None:
        steps = 500 if streamed else 0
    directory = Path(directory)
    if args.kind == "all" and kind == "retrieval":
        directory = directory / "retrieval"
    return TrainOptions(
        checkpoint_dir=directory,
        resume=args.resume is not None,
        checkpoint_steps=steps,
        progress=not args.quiet,
    )


def _join_processes(args: argparse.Namespace) -> bool:
    """Start JAX's multi-process runtime when the command line or JAX's variables ask;
    whether several processes take part."""
    from movierec.distributed import initialize, process_settings

    processes = process_settings(
        args.coordinator,
        args.num_processes,
        args.process_id,
    )
    if processes.several:
        initialize(processes, args.process_timeout)
        print(f"process {processes.index} of {processes.count} joined {processes.coordinator}")
    return processes.several


def _train(args: argparse.Namespace) -> int:
    """Runs :func:`_train_all`; a lost peer process ends this one at once, without JAX's
    shutdown handshake (which would wait for the dead process, then abort)."""
    from movierec.distributed import ProcessLost

    try:
        return _train_all(args)
    except ProcessLost as error:
        import os
        import sys

        print(f"movierec: error: {error}", file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(2)


def _train_all(args: argparse.Namespace) -> int:
    from movierec.data.loading import load_dataset
    from movierec.data.splits import ALL_RATINGS, check_evaluable, make_split
    from movierec.workflow import train_model

    kinds = ["retrieval", "ranking"] if args.kind == "all" else [args.kind]
    if args.help_settings is not None:
        return _help_settings(args)
    if not 0.0 < args.test_fraction < 1.0:
        raise MovierecError("--test-fraction must be between 0 and 1")
    overrides = _parse_overrides(args.overrides)
    feedback = _feedback_settings(args, overrides)
    if args.epochs is not None:
        if args.epochs < 1:
            raise MovierecError("--epochs must be at least 1")
        overrides["epochs"] = args.epochs
    names = _model_names(args, kinds)
    several = _join_processes(args)
    if args.stream:
        if args.no_eval:
            raise MovierecError("--stream always holds out its hash split's test ratings")
        per_model = _settings_per_model(names, overrides, None)
        return _train_streaming(args, names, per_model)
    per_model = _settings_per_model(names, overrides, args.seed)
    mode = _final_fit(args, several)
    logger.info("loading data set %s", args.data)
    dataset = load_dataset(args.data)
    stored, feedback_rows = None, 0
    if args.ratings_db:
        stored, feedback_rows = _stored_ratings(args.ratings_db, feedback, dataset.rating_scale)
    every, added = dataset.ratings, 0  # what a refit (or --no-eval) trains on
    if stored is not None:
        every, added = _merge_stored(every, every.iloc[:0], stored, dataset)
    if mode == "all":
        train_ratings, test_ratings = every, None
        split_info: dict[str, Any] = {"method": ALL_RATINGS, "ratings": len(every)}
    else:
        split = make_split(
            dataset.ratings,
            method=args.split,
            seed=args.seed,
            test_fraction=args.test_fraction,
            n=args.leave_out,
        )
        check_evaluable(dataset.ratings, split, f"data set {dataset.name}")
        train_ratings, test_ratings, split_info = split.train, split.test, dict(split.info)
        if stored is not None:
            train_ratings, held_out_added = _merge_stored(split.train, split.test, stored, dataset)
            if mode == "holdout":  # the saved model is the split's
                added = held_out_added
    if stored is not None:
        where = _describe_db(args.ratings_db)
        print(f"adding {added} of {len(stored)} ratings stored in {where}")
        if feedback_rows:
            print(f"  ({feedback_rows} of them 'watched' or 'not-interested' rows, as ratings)")
        split_info["stored_ratings"] = {
            "db": where,
            "count": added,
            "feedback": {**feedback.to_dict(), "rows": feedback_rows},
        }
    verbose = keras_verbosity(args.quiet)
    for kind, name in names.items():
        options = _train_options(args, kind, streamed=False)
        held_out = 0 if test_ratings is None else len(test_ratings)
        logger.info(
            "training %s model '%s' on %s (%d train / %d test ratings%s)",
            kind, name, dataset.name, len(train_ratings), held_out,
            ", then on all of them" if mode == "refit" else "",
        )
        result = train_model(
            kind,
            name,
            dataset,
            train_ratings,
            test_ratings,
            settings=per_model[kind],
            split_info=split_info,
            out_dir=Path(args.models) / kind,
            verbose=verbose,
            devices=args.devices,
            options=options,
            refit_ratings=every if mode == "refit" else None,
        )
        if result.directory is None:
            print(f"{kind} '{name}': trained in {result.seconds:.1f} s (process 0 saves the model)")
            continue
        print_metrics(
            f"{kind} '{name}': trained in {result.seconds:.1f} s, saved to {result.directory}"
            + _FINAL_FIT_NOTES[mode],
            result.metrics,
        )
    _warn_if_stages_differ(Path(args.models))
    return 0


#: What the saved model is, after "saved to DIR", by :func:`_final_fit`'s answer.
_FINAL_FIT_NOTES = {
    "refit": "\n  (metrics: trained on the split's train part, scored on its test part; "
    "the saved model was then refitted on every rating)",
    "holdout": "\n  (metrics: on the split's test part; the saved model was trained on its "
    "train part only)",
    "all": "\n  (trained on every rating; no held-out metrics, --no-eval)",
}


def _final_fit(args: argparse.Namespace, several: bool) -> str:
    """Which model ``train`` saves: ``"refit"`` (evaluate on the split, then refit on
    every rating: the default), ``"holdout"`` (the split's model) or ``"all"``."""
    if args.no_eval:
        return "all"
    if args.holdout:
        return "holdout"
    if several or args.checkpoint_dir or args.resume:
        print(
            "movierec: note: a run with checkpoints or several processes saves the model "
            "trained on the split (--holdout); --no-eval trains on every rating instead",
            file=sys.stderr,
        )
        return "holdout"
    return "refit"


def _warn_if_stages_differ(models: Path) -> None:
    """`recommend` and `serve` refuse a retrieval and a ranking model trained on
    different data or splits: say so when training has just made such a pair."""
    from movierec.models.artifacts import read_manifest, stage_mismatch

    if not ((models / "retrieval").is_dir() and (models / "ranking").is_dir()):
        return
    try:
        differ = stage_mismatch(
            read_manifest(models / "retrieval"), read_manifest(models / "ranking")
        )
    except MovierecError:
        return
    if differ:
        print(
            f"movierec: warning: {models}/retrieval and {models}/ranking were trained on "
            f"different data or splits ({differ}); `recommend` and `serve` will refuse them "
            "until both are trained with the same --data/--split/--seed",
            file=sys.stderr,
        )


def _train_streaming(
    args: argparse.Namespace, names: dict[str, str], per_model: dict[str, dict[str, Any]]
) -> int:
    """``train --stream``: one shard in memory at a time; see :mod:`movierec.data.shards`."""
    from movierec.workflow import train_streaming

    if args.split not in ("random", "hash"):
        raise MovierecError("--stream splits each rating by a hash (--split hash), not by time")
    if args.devices != 1 or args.ratings_db:
        raise MovierecError("--stream trains on one device from the shards alone")
    if args.eval_ratings < 0:
        raise MovierecError("--eval-ratings must be 0 or more")
    for kind, name in names.items():
        logger.info("training %s model '%s' streaming from %s", kind, name, args.data)
        result = train_streaming(
            kind,
            name,
            args.data,
            test_fraction=args.test_fraction,
            seed=args.seed,
            settings=per_model[kind],
            out_dir=Path(args.models) / kind,
            verbose=keras_verbosity(args.quiet),
            max_eval_ratings=args.eval_ratings,
            options=_train_options(args, kind, streamed=True),
        )
        if result.directory is None:
            print(f"{kind} '{name}': trained in {result.seconds:.1f} s (process 0 saves the model)")
            continue
        print_metrics(
            f"{kind} '{name}': trained in {result.seconds:.1f} s on {len(result.train)} "
            f"ratings (peak memory {result.peak_memory_mib / 1024:.2f} GiB), "
            f"saved to {result.directory}",
            result.metrics,
        )
    return 0


def _stored_ratings(url: str, feedback, scale) -> tuple[Any, int]:
    """Every rating the service stored in ``url`` (SQLite or PostgreSQL), then its
    feedback rows as ratings (:func:`movierec.feedback.feedback_as_ratings` with the
    ``feedback`` settings on the data's rating ``scale``); and how many of those."""
    from movierec.extras import require

    require("sqlalchemy", "--ratings-db")
    import pandas as pd

    from movierec.feedback import feedback_as_ratings
    from movierec.serving.store import read_feedback, read_ratings

    ratings = read_ratings(url)
    extra = feedback_as_ratings(read_feedback(url), ratings, feedback, tuple(scale))
    if not len(extra):
        return ratings, 0
    return pd.concat([ratings, extra.astype(ratings.dtypes.to_dict())], ignore_index=True), len(
        extra
    )


def _describe_db(url: str) -> str:
    """``url`` without its password, for output and manifests."""
    from movierec.serving.store import describe_url

    return describe_url(url)


def _merge_stored(train, test, stored, dataset) -> tuple[Any, int]:
    """``train`` plus the stored ratings that may be trained on (never ``test`` pairs)."""
    from movierec.data.stored_ratings import add_stored_ratings

    return add_stored_ratings(train, test, stored, dataset.movies)


def _evaluate(args: argparse.Namespace) -> int:
    from movierec.data.splits import ALL_RATINGS
    from movierec.models.artifacts import load_model

    kinds = ["retrieval", "ranking"] if args.kind == "all" else [args.kind]
    if any(k < 1 for k in args.k):
        raise MovierecError("-k values must be at least 1")
    report: dict[str, Any] = {}
    labels: dict[str, str] = {}
    for kind in kinds:
        directory = Path(args.models) / kind
        if args.kind == "all" and not directory.exists():
            continue
        saved = load_model(directory, lazy=True)
        manifest = saved.manifest
        split_info = manifest.get("split", {})
        if split_info.get("method") == ALL_RATINGS:
            report[kind] = {"model": manifest["model"], **_recorded_metrics(args, directory,
                                                                            manifest)}
            labels[kind] = "recorded when trained, on the held-out split before the refit"
            continue
        report[kind] = {"model": manifest["model"], **_evaluate_saved(args, kind, saved)}
        labels[kind] = "on its test split"
    if not report:
        raise MovierecError(f"no trained models under {args.models}; run `movierec train`")
    if args.json:
        print_json(report)
    else:
        for kind, metrics in report.items():
            print_metrics(f"{kind} '{metrics.pop('model')}' {labels[kind]}", metrics)
    return 0


def _recorded_metrics(
    args: argparse.Namespace, directory: Path, manifest: dict[str, Any]
) -> dict[str, Any]:
    """A refitted model's metrics: those measured before the refit, as recorded (its
    test ratings are in its training set now, so scoring them again would flatter it)."""
    if "holdout" not in manifest["split"]:
        raise MovierecError(
            f"{directory} was trained on every rating with no held-out part (--no-eval); "
            "train with --holdout to have a model `evaluate` can score"
        )
    asked = (sorted(args.k) != [10, 100], args.include_seen, args.min_rating is not None)
    if any(asked):
        raise MovierecError(
            f"{directory} was refitted on every rating after its evaluation, so it can only "
            "show the metrics recorded then (-k 10 100, seen movies excluded, every test "
            "rating relevant); train with --holdout to evaluate it with other options"
        )
    return dict(manifest.get("metrics", {}))


def _evaluate_saved(args: argparse.Namespace, kind: str, saved: Any) -> dict[str, Any]:
    """Score a model trained on a split on that split's test part, re-created from the
    data the manifest names (refused if those ratings are not the ones it came from)."""
    from movierec.data.loading import load_dataset
    from movierec.data.schema import ratings_digest
    from movierec.data.splits import split_from_manifest
    from movierec.evaluation.evaluate import evaluate_ranker, evaluate_retriever

    manifest = saved.manifest
    source = args.data or manifest.get("data_source")
    if not source:
        raise MovierecError(
            f"{args.models}/{kind} does not record where its data came from (trained on a "
            "data set built in memory); give the same ratings with --data DIR"
        )
    dataset = load_dataset(source)
    expected = manifest.get("data", {}).get("ratings_digest")
    if expected is not None:
        found = ratings_digest(dataset.ratings)
        if found != expected:
            raise MovierecError(
                f"{source} holds other ratings than {args.models}/{kind} was trained on "
                f"(ratings digest {found[:16]}, the manifest's {expected[:16]}: "
                f"{len(dataset.ratings)} ratings here, {manifest['data'].get('ratings')} "
                "there); give the model's own data with --data"
            )
    split = split_from_manifest(dataset.ratings, manifest["split"])
    if kind == "ranking":
        return evaluate_ranker(saved.ranker, saved.train, split.test)
    return evaluate_retriever(
        saved.retriever,
        saved.train,
        split.test,
        ks=tuple(args.k),
        exclude_seen=not args.include_seen,
        min_rating=args.min_rating,
    )


def _index(args: argparse.Namespace) -> int:
    """Only the settings given on the command line; the index's defaults fill the rest."""
    from movierec.pipeline import RETRIEVAL_DIR
    from movierec.retrieval.model_index import build_model_index

    names = ("m", "ef_construction", "ef_search", "nlist", "nprobe")
    given = vars(args)
    settings = {n: given[n] for n in names if given[n] is not None}
    if any(v < 1 for v in settings.values()):
        raise MovierecError("index settings must be positive integers")
    index, directory, seconds = build_model_index(
        Path(args.models) / RETRIEVAL_DIR, args.kind, **settings
    )
    print(
        f"built a {index.name} index of {index.size} candidates x {index.dim} dims "
        f"in {seconds:.1f} s, saved to {directory}"
    )
    return 0


# -- answers ----------------------------------------------------------------------


def _recommender(args: argparse.Namespace):
    from movierec.pipeline import Recommender

    return Recommender.load(args.models)


def _show_movies(
    rows: list[dict[str, Any]], args: argparse.Namespace, extra: list[str], legend: str = ""
) -> None:
    """``rows`` as JSON with ``--json``, else as a table whose headings are the JSON keys
    (``extra``: the score columns after the title), under a one-line ``legend`` saying
    what each score means."""
    if args.json:
        print_json(rows)
        return
    for row in rows:  # people read stars to two decimals, scores to three
        for key, digits in (("predicted_rating", 2), ("score", 3), ("blended", 3)):
            if row.get(key) is not None:
                row[key] = f"{row[key]:.{digits}f}"
    if legend:
        print(legend)
    columns = MOVIE_COLUMNS[:2] + extra + MOVIE_COLUMNS[2:]
    print_table(rows, [(key, key) for key in columns])


def _stars(saved) -> str:
    """``predicted_rating``'s meaning: stars on the scale the model was trained on."""
    low, high = saved.train.dataset.rating_scale
    return f"predicted_rating = predicted stars ({low:g} to {high:g})"


#: ``co_raters`` and ``shared_genres`` in a similar list.
SHARED = "co_raters = users who rated both in training; shared_genres = genres in common"

#: ``score`` in a recommendation list.
RETRIEVAL_SCORE = "score = retrieval score (a dot product: higher is better, no fixed scale)"


def _check_count(value: int, option: str) -> None:
    if not 1 <= value <= MAX_COUNT:
        raise MovierecError(f"{option} must be between 1 and {MAX_COUNT}, got {value}")


def _check_k(k: int) -> None:
    _check_count(k, "-k")


def _check_offset(offset: int) -> None:
    if offset < 0:
        raise MovierecError(f"--offset must be 0 or more, got {offset}")


def _recommend(args: argparse.Namespace) -> int:
    _check_k(args.k)
    recommender = _recommender(args)
    _check_offset(args.offset)
    answer = recommender.recommend(
        args.user,
        k=args.k,
        exclude_seen=not args.include_seen,
        offset=args.offset,
        exclude=args.exclude,
        explain=args.explain,
    )
    if recommender.ranking:
        if not args.json:
            print(f"Top {args.k} movies for user {args.user}, ordered by blended:")
        legend = (
            f"blended = score + {recommender.star_weight:g} x predicted_rating (the order); "
            f"{RETRIEVAL_SCORE}; {_stars(recommender.ranking)}"
        )
        extra = ["blended", "score", "predicted_rating"]
    else:
        if not args.json:
            print(f"Top {args.k} movies for user {args.user}, ordered by score:")
        legend, extra = RETRIEVAL_SCORE, ["score"]
    rows = [r.to_dict() for r in answer.items]
    if args.explain:
        legend += f"; {BECAUSE}"
        extra.append("because")
        if not args.json:
            for row in rows:
                row["because"] = because_text(row["because"])
    _show_movies(rows, args, extra, legend)
    return 0


#: ``because`` in an explained recommendation list.
BECAUSE = "because = your ratings that raised the movie's score most (leave one out)"


def because_text(reasons: list[dict[str, Any]]) -> str:
    """``"you rated Star Wars (1977) 5, ..."`` (``"-"`` when no rating raised the movie)."""
    if not reasons:
        return "-"
    return "you rated " + ", ".join(f"{r['title']} {r['rating']:g}" for r in reasons)


def _rank(args: argparse.Namespace) -> int:
    movies = list(dict.fromkeys(args.movies))  # a movie asked for twice is listed once
    recommender = _recommender(args)
    results = recommender.rank(args.user, movies)
    if not args.json:
        print(f"Predicted stars for user {args.user}, best first:")
    legend = _stars(recommender.ranking) if recommender.ranking else ""
    _show_movies([r.to_dict() for r in results], args, ["predicted_rating"], legend)
    return 0


def _similar(args: argparse.Namespace) -> int:
    _check_k(args.k)
    recommender = _recommender(args)
    _check_offset(args.offset)
    source = recommender.movie(args.movie)
    results = recommender.similar(args.movie, k=args.k, offset=args.offset, exclude=args.exclude)
    if not args.json:
        print(f"Movies like {source.title}, most similar first:")
    legend = f"{recommender.similarity_meaning()}; {SHARED}"
    rows = [r.to_dict() for r in results]
    if not args.json:
        for row in rows:
            row["shared_genres"] = ", ".join(row["shared_genres"]) or "-"
    _show_movies(rows, args, ["score", "co_raters", "shared_genres"], legend)
    return 0


def _search(args: argparse.Namespace) -> int:
    """Reads the saved catalogue only: no NumPy, pandas or Keras to start."""
    from movierec.errors import ModelError
    from movierec.models.catalogue import search_saved

    _check_count(args.limit, "--limit")
    query = " ".join(args.query)
    if not query.strip():
        raise MovierecError("the search has no words; give words of the title, e.g. "
                            "`movierec search star wars`")
    directory = Path(args.models) / "retrieval"
    if not (directory / "manifest.json").is_file():
        raise ModelError(f"no retrieval model under {args.models}; train one with `movierec train`")
    rows = search_saved(directory, query, args.limit)
    if not rows and not args.json:
        print(f"no movies match {query!r}")
        return 0
    _show_movies(rows, args, [])
    return 0


def prepare_quickstart(args: argparse.Namespace) -> None:
    """``quickstart``'s first step: fetch MovieLens 100K and check the user exists, so
    a wrong ``--user`` fails before minutes of training. The train and recommend steps
    are the ordinary commands (:func:`movierec.cli.main.quickstart`)."""
    from movierec.data import fetch_ml100k, load_dataset
    from movierec.errors import UnknownIdError

    _check_k(args.k)
    fetch_ml100k()
    ratings = load_dataset("ml-100k").ratings
    if str(args.user) not in set(ratings["user_id"]):
        raise UnknownIdError("user", args.user).with_hint(
            f"MovieLens 100K has users {_id_range(ratings['user_id'])}; pick one with --user"
        )


def _id_range(ids) -> str:
    """"1-943" for numeric ids, else a count."""
    unique = set(ids)
    if all(str(i).isdigit() for i in unique):
        numbers = sorted(int(i) for i in unique)
        return f"{numbers[0]}-{numbers[-1]}"
    return f"{len(unique)} ids"


def _serve(args: argparse.Namespace) -> int:
    """Load and check everything first, so a bad model dir, database, key file, port or
    option is one clear error; print "serving on" only once requests are answered.

    The port is bound before the models load (a port in use fails at once) and
    the bound sockets are handed to uvicorn.
    """
    from movierec.extras import require_serving

    if not 1 <= args.port <= 65535:
        raise MovierecError(f"--port must be 1 to 65535, got {args.port}")
    require_serving()
    from movierec.serving.security import LOOPBACK_HOSTS, is_loopback, parse_rate, read_api_keys
    from movierec.serving.server import bind_sockets

    keys = read_api_keys(args.api_key_file)
    if not keys and not is_loopback(args.host) and not args.no_auth:
        raise MovierecError(
            f"refusing to serve {args.host} without API keys: give --api-key-file FILE "
            "(or $MOVIEREC_API_KEY), or --no-auth if something in front checks who calls"
        )
    rate = parse_rate(args.rate_limit)
    from movierec.serving.retrain import parse_duration

    retrain_every = None if args.retrain_every is None else parse_duration(args.retrain_every)
    timeouts = {"--header-timeout": args.header_timeout, "--body-timeout": args.body_timeout}
    for option, value in timeouts.items():
        if not 0 < value <= 600:
            raise MovierecError(f"{option} must be in (0, 600] seconds")
    hosts: list[str] | None
    if args.allowed_hosts is not None:
        hosts = [h.strip() for h in args.allowed_hosts.split(",") if h.strip()]
    else:
        hosts = list(LOOPBACK_HOSTS) if is_loopback(args.host) else None
    sockets = bind_sockets(args.host, args.port)
    try:
        return _serve_on(args, sockets, keys, rate, hosts, retrain_every)
    finally:
        for sock in sockets:
            sock.close()


def _serve_on(
    args: argparse.Namespace,
    sockets: list[Any],
    keys: list[str],
    rate: float | None,
    hosts: list[str] | None,
    retrain_every: float | None = None,
) -> int:
    """``serve`` once its options are checked and its port is bound: load, then run."""
    import logging

    import uvicorn

    from movierec.pipeline import Recommender
    from movierec.serving.app import create_app
    from movierec.serving.process import tune_process_for_serving
    from movierec.serving.server import uvicorn_config
    from movierec.serving.store import RatingStore, default_url, describe_url

    # JAX logs "Unable to initialize backend 'tpu'" (INFO) on every start; the INFO
    # logging below would print it. Only this command's process is configured here.
    logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)
    db_url = args.db or default_url(args.models)
    RatingStore(db_url).close()
    recommender = Recommender.load(args.models)
    tune_process_for_serving()
    app = create_app(
        args.models,
        db_url,
        recommender=recommender,
        api_keys=keys,
        rate_limit=rate,
        allowed_hosts=hosts,
        body_timeout=args.body_timeout,
        tune_process=True,
        retrain_every=retrain_every,
    )
    server = uvicorn.Server(
        uvicorn_config(app, args.host, args.port, header_timeout=args.header_timeout)
    )
    logging.basicConfig(level=logging.INFO, format="%(message)s")  # access log to stderr
    auth = f"{len(keys)} API key(s)" if keys else "no API keys"
    _when_started(
        server,
        app,
        f"serving on http://{args.host}:{args.port}/ (API docs at /docs; {auth}; "
        f"ratings in {describe_url(db_url)}"
        + (f"; retraining every {args.retrain_every.strip()}" if retrain_every else "")
        + ")",
    )
    server.run(sockets=sockets)
    return 0


def _when_started(server: Any, app: Any, message: str) -> None:
    """Once uvicorn has bound its socket and finished start-up (the app's lifespan,
    which loads and warms the models), not before: print ``message``, and make
    SIGHUP reload the models like ``POST /admin/reload``."""
    import asyncio
    import signal

    from fastapi import HTTPException

    from movierec.serving.app import reload_models

    startup = server.startup

    async def reload_on_signal() -> None:
        try:
            await reload_models(app)
        except HTTPException as error:  # refused: logged, the old models stay live
            print(f"movierec: error: {error.detail}", file=sys.stderr, flush=True)

    async def announced_startup(*args: Any, **kwargs: Any) -> None:
        await startup(*args, **kwargs)
        if server.started:
            if hasattr(signal, "SIGHUP"):
                asyncio.get_running_loop().add_signal_handler(
                    signal.SIGHUP, lambda: asyncio.ensure_future(reload_on_signal())
                )
            print(message, flush=True)

    server.startup = announced_startup
