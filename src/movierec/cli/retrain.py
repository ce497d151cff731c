"""``movierec retrain``: the live models trained again, verified, and swapped in.

What a scheduler (cron, a systemd timer, ``serve --retrain-every``) calls so that
everyone's lists learn from the ratings people gave since the last training:

1. Under ``MODELS/.retrain.lock`` (one retrain at a time per models directory),
   finish or clear what an interrupted retrain left behind.
2. Read the live manifests: the data each model came from (``data_source``), its
   model name, settings, split and devices, and turn them into the ``movierec
   train KIND ...`` command line that made it, plus ``--ratings-db``: the very code
   path of ``train --ratings-db``, so everything that path trains on flows in.
3. Snapshot the ratings store once (:func:`movierec.serving.store.snapshot`), so
   both models train on the same rows while the service keeps writing.
4. Train each kind into ``MODELS/.retrain-STAMP/`` (beside the live models, on the
   same file system), and rebuild the approximate index if the live model has one.
5. Verify the new directory: it loads (checksums, the pair's lineage), answers a
   probe (a known user, a visitor, similar movies, predicted stars: all finite,
   none empty), and its lineage matches the live models' (same data, model,
   settings and split; only the stored ratings may differ).
6. Only then swap each kind into place (a rename each) and remove the old ones.

A new directory that fails verification is removed and the live one left as it
was (exit status 3); bad input or a failed training run exits 2, also without
touching the live models.
"""

from __future__ import annotations

import argparse
import errno
import json
import math
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from movierec.errors import ModelError, MovierecError

#: Environment variable with the ratings database URL (kept off the command line,
#: where other users of the machine could read its password).
RATINGS_DB_ENV = "MOVIEREC_RATINGS_DB"
#: Exit status of a retrain whose new models failed verification (the old stay).
REJECTED_EXIT = 3
LOCK_FILE = ".retrain.lock"
STAGING_PREFIX = ".retrain-"
#: Written into the staging directory once it is verified: a swap that a crash cut
#: short is finished by the next retrain instead of being thrown away.
VERIFIED_FILE = "verified.json"
KINDS = ("retrieval", "ranking")
#: Split parameters that must not change between the live and the new model.
SPLIT_KEYS = ("method", "seed", "test_fraction", "n", "refitted on")


class RetrainRejected(MovierecError):
    """The retrained models failed verification; the live models were left in place."""


class RetrainBusy(MovierecError):
    """Another retrain holds the models directory's lock."""


@dataclass
class RetrainResult:
    """What one retrain did.

    Attributes:
        models: The live models directory.
        seconds: Wall-clock seconds, snapshot to swap.
        ratings: Ratings the new retrieval model was trained on.
        stored: Of those, ratings stored through the service.
        created: The new retrieval manifest's ``created`` (UTC).
    """

    models: Path
    seconds: float
    ratings: int
    stored: int
    created: str


def retrain(
    models: str | Path,
    ratings_db: str,
    run_train: Callable[[list[str]], int],
    *,
    quiet: bool = True,
    verbose: bool = False,
) -> RetrainResult:
    """Train the models in ``models`` again on their data plus ``ratings_db``; verify; swap.

    Args:
        models: The live models directory (``retrieval/`` and maybe ``ranking/``).
        ratings_db: SQLAlchemy URL of the service's ratings store.
        run_train: Runs one ``movierec`` command line (``["train", ...]``) in this
            process and returns its exit status: the command line's own parser and
            handlers, passed in by :mod:`movierec.cli.main` (which owns the parser).
        quiet: Training prints results only, no progress.
        verbose: Training logs debug detail.

    Returns:
        The :class:`RetrainResult` once the new models are live on disk.

    Raises:
        RetrainBusy: Another retrain of ``models`` is running.
        RetrainRejected: The new models failed verification (the old are untouched).
        MovierecError: The live models cannot be retrained (none, streamed, several
            processes), the data or database cannot be read, or training failed.
    """
    models = Path(models)
    started = time.perf_counter()
    with _locked(models):
        _recover(models)
        live = _live_manifests(models)
        plans = {kind: train_argv(kind, manifest) for kind, manifest in live.items()}
        staging = models / f"{STAGING_PREFIX}{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
        staging.mkdir()
        swapping = False
        try:
            from movierec.serving.store import describe_url, snapshot

            snapshot_url = snapshot(ratings_db, staging / "ratings-snapshot.sqlite3")
            print(
                f"retraining {', '.join(live)} in {models} with the ratings stored in "
                f"{describe_url(ratings_db)}",
                flush=True,
            )
            for argv in plans.values():
                _run_train(
                    run_train,
                    [*argv, "--models", str(staging), "--ratings-db", snapshot_url],
                    quiet=quiet,
                    verbose=verbose,
                )
            _rebuild_index(models, staging)
            new = verify(staging, live)
            created = {kind: facts["created"] for kind, facts in new.items()}
            marker = {"verified": _now(), "created": created}
            (staging / VERIFIED_FILE).write_text(json.dumps(marker) + "\n")
            swapping = True
            _swap_in(staging, models)
            swapping = False
        finally:
            if not swapping:  # else cut short mid-swap: the next retrain finishes it
                shutil.rmtree(staging, ignore_errors=True)
    retrieval = new["retrieval"]
    return RetrainResult(
        models=models,
        seconds=time.perf_counter() - started,
        ratings=int(retrieval["trained_on"]),
        stored=int(retrieval["stored"]),
        created=str(retrieval["created"]),
    )


def train_argv(kind: str, manifest: dict[str, Any]) -> list[str]:
    """The ``movierec train`` arguments that made a model, read from its manifest (less
    ``--models`` and ``--ratings-db``, which the retrain sets).

    Raises:
        MovierecError: The model cannot be retrained this way: no recorded data
            source, trained streaming from shards, or in several processes.
    """
    from movierec.data.splits import ALL_RATINGS

    name = manifest.get("model")
    source = manifest.get("data_source")
    if not source:
        raise MovierecError(
            f"the {kind} model does not record where its data came from (trained on a data "
            "set built in memory); train it with `movierec train --data DIR` to retrain it"
        )
    if manifest.get("streamed"):
        raise MovierecError(
            f"the {kind} model was trained streaming from shards (--stream), which cannot add "
            "stored ratings; retrain it with the same `movierec train --stream` command"
        )
    if int(manifest.get("processes") or 1) > 1:
        raise MovierecError(
            f"the {kind} model was trained in several processes; retrain it with the same "
            "`movierec train` command on every process"
        )
    split = dict(manifest.get("split") or {})
    if split.get("method") == ALL_RATINGS:
        mode = ["--no-eval"] if "holdout" not in split else []
        split = split.get("holdout", {})
    else:
        mode = ["--holdout"]
    settings = dict(manifest.get("settings") or {})
    seed = split.get("seed")
    if seed is None:
        seed = settings.get("seed", 42)
    argv = ["train", kind, "--model", str(name), "--data", str(source), "--seed", str(seed)]
    if split.get("method") not in (None, ALL_RATINGS):
        argv += ["--split", str(split["method"])]
        if split.get("test_fraction"):
            argv += ["--test-fraction", repr(float(split["test_fraction"]))]
        if split.get("n"):
            argv += ["--leave-out", str(int(split["n"]))]
    argv += mode + ["--devices", str(int(manifest.get("devices") or 1))]
    for key, value in sorted(settings.items()):
        argv += ["--set", f"{key}={json.dumps(value)}"]
    return argv


def verify(staging: Path, live: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Check the retrained models in ``staging`` before they may replace the live ones.

    Args:
        staging: The new models directory.
        live: The live models' manifests, by kind.

    Returns:
        By kind: the new manifest's ``created``, the ratings the model was trained
        on (``trained_on``) and how many of them were stored ones (``stored``).

    Raises:
        RetrainRejected: The new models do not load, answer the probe badly, lack a
            kind the live models have, or differ from the live models in data,
            model, settings or split.
    """
    from movierec.models.artifacts import lineage, read_manifest
    from movierec.pipeline import Recommender

    try:
        recommender = Recommender.load(staging)
        made = [kind for kind in KINDS if (staging / kind).is_dir()]
        if made != list(live):
            raise RetrainRejected(f"the retrain made {made}, the live models are {list(live)}")
        probe(recommender)
        new = {kind: read_manifest(staging / kind) for kind in live}
    except RetrainRejected:
        raise
    except MovierecError as error:
        raise RetrainRejected(f"the retrained models do not load: {error}") from None
    for kind, manifest in new.items():
        old = live[kind]
        differ = [
            key
            for key in ("kind", "model", "settings", "data_source", "rating_scale")
            if manifest.get(key) != old.get(key)
        ]
        before, after = lineage(old), lineage(manifest)
        differ += [
            key
            for key in sorted(set(before) | set(after))
            if (key.startswith("data ") or key.removeprefix("split ") in SPLIT_KEYS)
            and before.get(key) != after.get(key)
        ]
        if differ:
            shown = "; ".join(
                f"{key}: {_short(old, before, key)} -> {_short(manifest, after, key)}"
                for key in differ
            )
            raise RetrainRejected(
                f"the retrained {kind} model's lineage differs from the live one's ({shown}); "
                "if the data changed on purpose, train with `movierec train` instead"
            )
    saved = {"retrieval": recommender.retrieval, "ranking": recommender.ranking}
    trained_on = {}
    for kind in new:
        model = saved.get(kind)
        if model is None:
            raise RetrainRejected(f"the retrained models have no {kind} model")
        trained_on[kind] = len(model.train.rating)
    return {
        kind: {
            "created": manifest.get("created"),
            "trained_on": trained_on[kind],
            "stored": int(
                ((manifest.get("split") or {}).get("stored_ratings") or {}).get("count") or 0
            ),
        }
        for kind, manifest in new.items()
    }


def probe(recommender: Any) -> None:
    """Ask the loaded models what the service asks and check the answers are sane: a
    known user's list, a visitor's, similar movies and predicted stars, each not
    empty and finite.

    Raises:
        RetrainRejected: An answer is empty, or a score or predicted star not finite.
    """
    train = recommender.retrieval.train
    users, movies = train.users.ids, train.movies.ids
    if not users or not movies:
        raise RetrainRejected("the retrained model knows no users or no movies")
    answers = {
        f"user {users[0]}'s recommendations": recommender.recommend(users[0], 10, True).items,
        "a visitor's recommendations": recommender.recommend(
            None, 10, True, [(movies[0], 5.0)]
        ).items,
        f"movies like {movies[0]}": recommender.similar(movies[0], 10),
    }
    if recommender.ranking is not None:
        answers["predicted stars"] = recommender.rank(users[0], movies[:10])
    for what, items in answers.items():
        if not items:
            raise RetrainRejected(f"the retrained model answers nothing for {what}")
        for item in items:
            for field in ("score", "predicted_rating", "blended"):
                value = getattr(item, field)
                if value is not None and not math.isfinite(value):
                    raise RetrainRejected(
                        f"the retrained model gives {field} {value} to movie {item.movie_id} "
                        f"in {what}"
                    )


def _short(manifest: dict[str, Any], lineage: dict[str, Any], key: str) -> str:
    value = lineage[key] if key in lineage else manifest.get(key)
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def _live_manifests(models: Path) -> dict[str, dict[str, Any]]:
    """The live models' manifests by kind (retrieval first); ModelError without one."""
    from movierec.models.artifacts import read_manifest

    if not (models / "retrieval").is_dir():
        raise ModelError(f"no retrieval model under {models}; train one with `movierec train`")
    return {kind: read_manifest(models / kind) for kind in KINDS if (models / kind).is_dir()}


def _run_train(
    run_train: Callable[[list[str]], int], argv: list[str], *, quiet: bool, verbose: bool
) -> None:
    """``movierec train ARGV`` in this process, through the command line's own code."""
    argv = [*argv, *(["--quiet"] if quiet else []), *(["--verbose"] if verbose else [])]
    code = run_train(argv)
    if code != 0:
        raise MovierecError(f"training failed (movierec {' '.join(argv[:2])} exited {code})")


def _rebuild_index(models: Path, staging: Path) -> None:
    """An approximate index like the live retrieval model's, for the new one."""
    from movierec.retrieval.model_index import BUILD_FILE, INDEX_DIR, build_model_index

    build_file = models / "retrieval" / INDEX_DIR / BUILD_FILE
    if not build_file.is_file():
        return
    try:
        build = json.loads(build_file.read_text())
        kind, settings = build["kind"], dict(build.get("settings") or {})
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise MovierecError(f"{build_file}: unreadable ({error}); rebuild the index") from None
    build_model_index(staging / "retrieval", kind, progress=False, **settings)


def _swap_in(staging: Path, models: Path) -> None:
    """Each kind of ``staging`` into ``models``: the live directory is renamed aside, the
    new one renamed into place, then the old one removed."""
    for kind in KINDS:
        new = staging / kind
        if not new.is_dir():
            continue
        target = models / kind
        old = models / f".{kind}.old-{os.getpid()}"
        if target.exists():
            os.replace(target, old)
        os.replace(new, target)
        shutil.rmtree(old, ignore_errors=True)


def _recover(models: Path) -> None:
    """What an interrupted retrain left: a swap cut short between its renames (the live
    pair is then mixed, which ``serve`` refuses) is finished; anything else is removed.

    A swap is finished only while the kinds it already moved are still the live ones
    (same ``created`` as recorded when verified): a model trained by hand since wins.
    """
    from movierec.models.artifacts import read_manifest

    for leftover in sorted(models.glob(f"{STAGING_PREFIX}*")):
        try:
            marker = json.loads((leftover / VERIFIED_FILE).read_text())
            created = dict(marker["created"])
            moved = [kind for kind in created if not (leftover / kind).is_dir()]
            # cut between a kind's two renames: the live one is aside, the new one here
            cut = [kind for kind in created if kind not in moved and not (models / kind).exists()]
            begun = bool(moved or cut) and all(
                read_manifest(models / kind).get("created") == created[kind] for kind in moved
            )
        except (OSError, ValueError, KeyError, TypeError, MovierecError):
            begun = False
        if begun:
            print(f"finishing the swap of {leftover} that an earlier retrain began", flush=True)
            _swap_in(leftover, models)
        shutil.rmtree(leftover, ignore_errors=True)
    for kind in KINDS:
        for old in models.glob(f".{kind}.old-*"):
            shutil.rmtree(old, ignore_errors=True)


@contextmanager
def _locked(models: Path) -> Iterator[None]:
    """Hold ``models/.retrain.lock`` (an advisory lock the OS releases if we die)."""
    import fcntl

    if not models.is_dir():
        raise ModelError(f"no trained models in {models}; run `movierec train` first")
    with open(models / LOCK_FILE, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise RetrainBusy(f"another retrain of {models} is running") from None
            raise
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def run_command(args: argparse.Namespace, run_train: Callable[[list[str]], int]) -> int:
    """``movierec retrain``: 0 once the new models are in place, 3 when they failed
    verification (the old stay), 2 for anything else the user can fix."""
    import sys

    from movierec.extras import require

    require("sqlalchemy", "retrain")
    from movierec.serving.store import default_url

    if args.nice is not None:
        if not 0 <= args.nice <= 19:
            raise MovierecError(f"--nice must be 0 to 19, got {args.nice}")
        if args.nice:
            os.nice(args.nice)
    url = args.ratings_db or os.environ.get(RATINGS_DB_ENV) or default_url(args.models)
    try:
        result = retrain(args.models, url, run_train, quiet=args.quiet, verbose=args.verbose)
    except RetrainRejected as error:
        print(
            f"movierec: error: {error}; the live models in {args.models} are unchanged",
            file=sys.stderr,
        )
        return REJECTED_EXIT
    print(
        f"retrained in {result.seconds:.1f} s on {result.ratings} ratings "
        f"({result.stored} stored through the service), verified and swapped into "
        f"{result.models}; reload a running service (POST /admin/reload or SIGHUP)",
        flush=True,
    )
    return 0
