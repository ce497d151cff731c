"""The ``movierec`` command: data, train, evaluate, recommend, rank, similar, serve.

Every command turns input problems into one clear line on stderr and exit
status 2; tracebacks are for bugs only.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from movierec._version import __version__
from movierec.cli import commands
from movierec.errors import MovierecError

MODELS_ENV = "MOVIEREC_MODELS"
#: Commands without ``--models`` (the default directory is not made for them).
COMMANDS_WITHOUT_MODELS = frozenset({"data"})

Subparsers = Any  # argparse's private _SubParsersAction


def default_models_dir() -> Path:
    """``$MOVIEREC_MODELS``, else ``models`` under the data home.

    Raises:
        DataError: The data home (``$MOVIEREC_HOME``) is a file or cannot be created.
    """
    raw = os.environ.get(MODELS_ENV)
    if raw:
        return Path(raw).expanduser()
    from movierec.data.home import data_home

    return data_home() / "models"


def build_parser() -> argparse.ArgumentParser:
    """The ``movierec`` argument parser: one small function per command below."""
    parser = argparse.ArgumentParser(
        prog="movierec",
        description="A two-stage movie recommender: two-tower retrieval, then ranking.",
    )
    parser.add_argument("--version", action="version", version=f"movierec {__version__}")
    # Every command's namespace has these, whether or not the command takes the option.
    parser.set_defaults(models=None, quiet=False, verbose=False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (
        _data_parser,
        _train_parser,
        _evaluate_parser,
        _answer_parsers,
        _serve_parser,
        _retrain_parser,
        _index_parser,
        _quickstart_parser,
    ):
        add(sub)
    return parser


def _models_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--models",
        type=Path,
        default=None,
        help=f"model directory (default: ${MODELS_ENV} or <data home>/models)",
    )


def _data_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data",
        default="ml-100k",
        help="'ml-100k' (default, from the recbole wheel), or a directory with "
        "GroupLens ml-100k / ml-1m / ml-latest files, or movierec Parquet shards",
    )


def _kind_argument(p: argparse.ArgumentParser, help: str) -> None:
    p.add_argument(
        "kind",
        choices=["retrieval", "ranking", "all"],
        nargs="?",
        default="all",
        help=help,
    )


def _json_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _data_parser(sub: Subparsers) -> None:
    """``data fetch | info | synth | expand``."""
    data = sub.add_parser("data", help="fetch and inspect data sets")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    fetch = data_sub.add_parser("fetch", help="fetch MovieLens 100K into the data home")
    fetch.add_argument("--wheel", type=Path, help="use this recbole-1.2.1 wheel, no download")
    fetch.add_argument("--force", action="store_true", help="fetch again even if cached")
    info = data_sub.add_parser("info", help="counts and ranges of a data set")
    _data_option(info)
    _json_option(info)
    synth = data_sub.add_parser(
        "synth", help="generate a synthetic MovieLens-shaped data set as Parquet shards"
    )
    synth.add_argument("--users", type=int, required=True, help="number of users")
    synth.add_argument("--movies", type=int, required=True, help="number of movies")
    synth.add_argument("--ratings", type=int, required=True, help="number of ratings")
    synth.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    synth.add_argument("--out", type=Path, required=True, help="output directory")
    synth.add_argument(
        "--shard-size", type=int, default=1_000_000, help="ratings per Parquet shard"
    )
    expand = data_sub.add_parser(
        "expand",
        help="grow a real data set by randomized fractal expansion into Parquet shards",
        description="Grow a real data set K x L times (users x movies) by randomized fractal "
        "expansion (Belletti et al. 2019): copy a of user i rates copy b of movie j, with "
        "i's stars, with a probability from a small matrix made from the source's SVD. "
        "Count distributions keep the source's shape; titles say which movie a copy is of.",
    )
    _data_option(expand)
    expand.add_argument(
        "--user-multiplier", type=int, required=True, metavar="K", help="copies of each user"
    )
    expand.add_argument(
        "--movie-multiplier", type=int, required=True, metavar="L", help="copies of each movie"
    )
    expand.add_argument(
        "--ratings",
        type=int,
        default=None,
        help="expected ratings in the result (default: the source's times K, so each user "
        "copy keeps its source's number of ratings)",
    )
    expand.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    expand.add_argument("--out", type=Path, required=True, help="output directory")
    expand.add_argument(
        "--shard-size", type=int, default=1_000_000, help="ratings per Parquet shard"
    )


def _train_parser(sub: Subparsers) -> None:
    """``train [retrieval|ranking|all]``: every training option."""
    train = sub.add_parser("train", help="train, evaluate and save models")
    _kind_argument(train, "which model to train (default: all, both)")
    train.add_argument(
        "--model",
        default=None,
        help="model name: retrieval 'two-tower' (default) or 'example'; "
        "ranking 'dcn' (default) or 'example'",
    )
    _data_option(train)
    _models_option(train)
    train.add_argument(
        "--split",
        default="random",
        choices=["random", "temporal", "leave-last-n", "hash"],
        help="random (default), temporal, leave-last-n, or hash (per-rating, as --stream uses)",
    )
    train.add_argument(
        "--test-fraction", type=float, default=0.2, help="share of ratings held out (0.2)"
    )
    train.add_argument("--leave-out", type=int, default=1, help="N for --split leave-last-n")
    train.add_argument("--seed", type=int, default=42, help="seed for the split and the model")
    final = train.add_mutually_exclusive_group()
    final.add_argument(
        "--holdout",
        action="store_true",
        help="save the model trained on the train part of the split (what `movierec evaluate` "
        "scores again) instead of refitting it on every rating, the default",
    )
    final.add_argument(
        "--no-eval",
        action="store_true",
        help="train on every rating at once and skip the held-out evaluation (no metrics)",
    )
    train.add_argument("--epochs", type=int, default=None, help="override the model's epochs")
    train.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a model setting (repeatable, JSON values), e.g. --set embedding_dim=64; "
        "--help-settings lists them",
    )
    train.add_argument(
        "--help-settings",
        nargs="?",
        const="",
        default=None,
        metavar="MODEL",
        help="list every setting of MODEL (default: the models this command would train) "
        "with its type, default, range and meaning, then exit",
    )
    train.add_argument("--quiet", action="store_true", help="print results only, no progress")
    train.add_argument(
        "--verbose", action="store_true", help="more detail: settings, timings, debug logs"
    )
    train.add_argument(
        "--devices",
        type=int,
        default=1,
        help="train data-parallel over N devices (CPU: set "
        "XLA_FLAGS=--xla_force_host_platform_device_count=N first)",
    )
    train.add_argument(
        "--stream",
        action="store_true",
        help="train from the Parquet shards of --data one shard at a time (data sets from "
        "`movierec data synth`; retrieval 'two-tower', ranking 'dcn'); the split is a per-rating "
        "hash split",
    )
    train.add_argument(
        "--eval-ratings",
        type=int,
        default=200_000,
        metavar="N",
        help="with --stream: evaluate on the first N test ratings (default 200000)",
    )
    train.add_argument(
        "--checkpoint-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="ranking 'dcn' and retrieval 'two-tower': save weights, optimizer "
        "and random state, epoch and batch position to DIR (atomically) at every epoch end "
        "and every --checkpoint-steps steps; train all puts the retriever's in DIR/retrieval",
    )
    train.add_argument(
        "--checkpoint-steps",
        type=int,
        default=None,
        metavar="N",
        help="also checkpoint every N steps (default: epoch ends only in memory, "
        "every 500 steps with --stream)",
    )
    train.add_argument(
        "--resume",
        type=Path,
        default=None,
        metavar="DIR",
        help="continue the run checkpointed in DIR (same command otherwise); keeps "
        "checkpointing there",
    )
    train.add_argument(
        "--coordinator",
        default=None,
        metavar="HOST:PORT",
        help="train in several processes (ranking 'dcn'): process 0's address; "
        "default $JAX_COORDINATOR_ADDRESS",
    )
    train.add_argument(
        "--num-processes",
        type=int,
        default=None,
        metavar="N",
        help="processes in the run (default $JAX_NUM_PROCESSES, else 1)",
    )
    train.add_argument(
        "--process-id",
        type=int,
        default=None,
        metavar="I",
        help="this process's index, 0..N-1 (default $JAX_PROCESS_ID); 0 writes the models",
    )
    train.add_argument(
        "--process-timeout",
        type=int,
        default=60,
        metavar="SECONDS",
        help="how long to wait for the other processes to join, and for a silent one "
        "before counting it dead (default 60)",
    )
    train.add_argument(
        "--ratings-db",
        default=None,
        metavar="URL",
        help="also train on the ratings and feedback stored by `movierec serve` in this "
        "database (SQLAlchemy URL, e.g. sqlite:///models/ratings.sqlite3); the feedback_* "
        "settings (--help-settings) weigh 'watched' and 'not-interested' rows",
    )


def _evaluate_parser(sub: Subparsers) -> None:
    """``evaluate [retrieval|ranking|all]``."""
    evaluate = sub.add_parser("evaluate", help="metrics of saved models on their test split")
    _models_option(evaluate)
    _kind_argument(evaluate, "which saved model to evaluate (default: all)")
    evaluate.add_argument(
        "--data",
        default=None,
        help="the ratings the models were trained on (default: where their manifest says "
        "they came from); refused if they differ from those",
    )
    evaluate.add_argument("-k", type=int, nargs="+", default=[10, 100], help="cut-offs for top-K")
    evaluate.add_argument(
        "--include-seen", action="store_true", help="keep movies rated in training in the lists"
    )
    evaluate.add_argument(
        "--min-rating", type=float, default=None, help="only test ratings >= this are relevant"
    )
    _json_option(evaluate)


def _paging_options(parser: argparse.ArgumentParser) -> None:
    """``--offset`` and ``--exclude``: the next page of a list, without given movies."""
    parser.add_argument(
        "--offset",
        type=int,
        default=0,
        metavar="N",
        help="skip the first N movies of the list: the next page (default 0)",
    )
    parser.add_argument(
        "--exclude",
        nargs="+",
        default=[],
        metavar="MOVIE",
        help="movie ids never to list (e.g. those already shown)",
    )


def _answer_parsers(sub: Subparsers) -> None:
    """``recommend``, ``rank``, ``similar`` and ``search``: answers from saved models."""
    recommend = sub.add_parser("recommend", help="top movies for a user")
    _models_option(recommend)
    recommend.add_argument("--user", required=True, help="user id")
    recommend.add_argument("-k", type=int, default=10, help="how many movies (1-1000, default 10)")
    recommend.add_argument("--include-seen", action="store_true", help="allow watched movies")
    _paging_options(recommend)
    recommend.add_argument(
        "--explain",
        action="store_true",
        help="name each movie's reasons: up to three of the user's ratings that raised it most",
    )
    _json_option(recommend)

    rank = sub.add_parser("rank", help="predicted stars for given movies")
    _models_option(rank)
    rank.add_argument("--user", required=True, help="user id")
    rank.add_argument("--movies", nargs="+", required=True, help="movie ids")
    _json_option(rank)

    similar = sub.add_parser("similar", help="movies like this one")
    _models_option(similar)
    similar.add_argument("--movie", required=True, help="movie id (find one with `search`)")
    similar.add_argument("-k", type=int, default=10, help="how many movies (1-1000, default 10)")
    _paging_options(similar)
    _json_option(similar)

    search = sub.add_parser("search", help="find movies by title")
    _models_option(search)
    search.add_argument("query", nargs="+", help="words the title must all contain")
    search.add_argument("--limit", type=int, default=20, help="most results (1-1000, default 20)")
    _json_option(search)


def _serve_parser(sub: Subparsers) -> None:
    """``serve``: the HTTP API and its guards."""
    serve = sub.add_parser("serve", help="HTTP API and web page (FastAPI on uvicorn)")
    _models_option(serve)
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on (8000)")
    serve.add_argument(
        "--db",
        default=None,
        metavar="URL",
        help="SQLAlchemy URL of the ratings database (default: ratings.sqlite3 beside the models)",
    )
    serve.add_argument(
        "--api-key-file",
        type=Path,
        default=None,
        metavar="FILE",
        help="API keys, one a line (also $MOVIEREC_API_KEY); the API then needs "
        "`Authorization: Bearer KEY`",
    )
    serve.add_argument(
        "--no-auth",
        action="store_true",
        help="serve a non-loopback --host without API keys (on purpose: behind your own gate)",
    )
    serve.add_argument(
        "--rate-limit",
        default="100/s",
        metavar="N/s",
        help="requests per client (API key, else address): N/s, N/min or off (default 100/s)",
    )
    serve.add_argument(
        "--allowed-hosts",
        default=None,
        metavar="H1,H2",
        help="Host header names accepted, comma-separated, or '*' (default: the loopback "
        "names for a loopback --host, else any)",
    )
    serve.add_argument(
        "--header-timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="close connections whose request headers take longer (default 10)",
    )
    serve.add_argument(
        "--body-timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="answer 408 to request bodies that take longer (default 10)",
    )
    serve.add_argument(
        "--retrain-every",
        default=None,
        metavar="DURATION",
        help="every DURATION (e.g. 30m, 6h, 1d), run `movierec retrain` in a separate "
        "low-priority process and swap the verified new models in (default: never)",
    )


def _retrain_parser(sub: Subparsers) -> None:
    """``retrain``: the live models trained again on their data plus the stored ratings."""
    retrain = sub.add_parser(
        "retrain",
        help="train the models again on their data plus every stored rating, verify, swap in",
        description="Train the models in --models again with the data and settings their "
        "manifests record plus every rating stored by `movierec serve`, into a new directory "
        "beside them; verify it (loads, answers a probe, same lineage) and only then swap it "
        "in. Exit status: 0 swapped in, 3 the new models failed verification (the live ones "
        "are unchanged), 2 any other error (nothing changed).",
    )
    _models_option(retrain)
    retrain.add_argument(
        "--ratings-db",
        default=None,
        metavar="URL",
        help="SQLAlchemy URL of the ratings store (default: $MOVIEREC_RATINGS_DB, else "
        "ratings.sqlite3 beside the models, as `serve` uses)",
    )
    retrain.add_argument(
        "--nice",
        type=int,
        default=10,
        metavar="N",
        help="lower this process's CPU priority by N, 0-19 (default 10: the service "
        "answering on the same machine comes first)",
    )
    retrain.add_argument("--quiet", action="store_true", help="print results only, no progress")
    retrain.add_argument(
        "--verbose", action="store_true", help="more detail: settings, timings, debug logs"
    )


def _index_parser(sub: Subparsers) -> None:
    """``index build``."""
    index = sub.add_parser("index", help="approximate-retrieval index for a trained model")
    index_sub = index.add_subparsers(dest="index_command", required=True, metavar="ACTION")
    build = index_sub.add_parser(
        "build", help="index MODELS/retrieval's candidates; recommend then uses it"
    )
    _models_option(build)
    build.add_argument(
        "--kind",
        default="faiss-hnsw",
        choices=["faiss-hnsw", "faiss-ivf", "brute-force"],
        help="index type (default faiss-hnsw)",
    )
    build.add_argument("--m", type=int, default=None, help="HNSW graph degree (32)")
    build.add_argument("--ef-construction", type=int, default=None, help="HNSW (200)")
    build.add_argument("--ef-search", type=int, default=None, help="HNSW search breadth (128)")
    build.add_argument("--nlist", type=int, default=None, help="IVF lists (4*sqrt(n))")
    build.add_argument("--nprobe", type=int, default=None, help="IVF lists searched (16)")


def _quickstart_parser(sub: Subparsers) -> None:
    """``quickstart``: fetch, train both models, recommend."""
    quickstart = sub.add_parser(
        "quickstart", help="fetch MovieLens 100K, train both models, show recommendations"
    )
    _models_option(quickstart)
    quickstart.add_argument("--user", default="42", help="user to recommend for (default 42)")
    quickstart.add_argument("-k", type=int, default=10, help="how many movies (default 10)")
    quickstart.add_argument("--quiet", action="store_true", help="print results only")
    quickstart.add_argument("--verbose", action="store_true", help="more detail while training")


def main(argv: Sequence[str] | None = None) -> int:
    """The ``movierec`` command: 0 on success, 2 for a user error, 130 when interrupted.

    Args:
        argv: The arguments after ``movierec``. ``None`` (the console script,
            ``python -m movierec.cli.main``) reads ``sys.argv`` and means this call owns
            the process: Ctrl-C is then handled by :class:`InterruptGuard` and ends the
            process at once with status 130, without Python's shutdown. Given a list
            (tests, ``quickstart``), nothing process-wide is touched and an interrupt
            returns 130.

    Returns:
        The exit status.
    """
    guard = InterruptGuard()
    owns_process = argv is None
    if owns_process:
        guard.install()
    try:
        code = _main(argv)
    except BaseException as error:
        # After Ctrl-C, whatever ends the command is the interrupt: libraries may turn
        # a KeyboardInterrupt into another error while they unwind (Keras does).
        if not (isinstance(error, KeyboardInterrupt) or guard.interrupted):
            raise
        guard.exiting = True  # a further Ctrl-C cannot cut the message short
        code = 130
        print("movierec: interrupted", file=sys.stderr)
        if owns_process:
            guard.exit_now(code)
    if owns_process:
        guard.after_command(code)
    return code


def _main(argv: Sequence[str] | None) -> int:
    """Parse, check the environment, run the command; user errors become one line and 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.models is None and args.command not in COMMANDS_WITHOUT_MODELS:
            args.models = default_models_dir()
        if args.models is not None and Path(args.models).exists():
            if not Path(args.models).is_dir():
                raise MovierecError(f"--models {args.models} is a file, not a directory")
        from movierec.progress import configure_cli_logging

        configure_cli_logging(args.quiet, args.verbose)
        if args.command == "quickstart":
            return quickstart(parser, args)
        if args.command == "retrain":
            return retrain(parser, args)
        return commands.run(args)
    except MovierecError as error:
        print(f"movierec: error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and the like: not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def quickstart(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """``quickstart``: fetch, check the user, then the commands a person would type
    (``train`` both default models, ``recommend``), parsed by the same parser."""
    commands.prepare_quickstart(args)
    models = ["--models", str(args.models)]
    train = ["train", "--data", "ml-100k", *models]
    train += ["--quiet"] * args.quiet + ["--verbose"] * args.verbose
    code = commands.run(parser.parse_args(train))
    if code:
        return code
    print()
    recommend = ["recommend", "--user", str(args.user), "-k", str(args.k), *models]
    return commands.run(parser.parse_args(recommend))


def retrain(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """``retrain``: :mod:`movierec.cli.retrain`, training through ``train`` command lines
    parsed by the same parser (as ``quickstart`` does), so it runs the very code a
    person's ``movierec train`` would."""
    from movierec.cli.retrain import run_command

    return run_command(args, lambda argv: commands.run(parser.parse_args(argv)))


class InterruptGuard:
    """Ctrl-C for the process :func:`main` owns: status 130 and one line, at any moment.

    Python's own handling fails in three ways while JAX and Keras load and compile:
    a KeyboardInterrupt raised inside a garbage-collector callback or ``__del__`` is
    printed and dropped (training runs on); Keras turns one raised mid-way through
    creating a variable into a ``TypeError``; and interpreter shutdown after an
    interrupted import of an extension module can crash (status 139). So:

    - SIGINT still raises KeyboardInterrupt, so ``finally`` blocks and the atomic
      writers (:mod:`movierec.atomic`) remove their staging files, and it is
      remembered (:attr:`interrupted`); a second one within :attr:`REPEAT_S` seconds
      is the same key press and does not interrupt that clean-up.
    - One that Python could not raise (reported to :data:`sys.unraisablehook`) is
      raised again in the main thread a moment later.
    - :meth:`exit_now` then ends the process with ``os._exit``, after flushing
      stdout and stderr: no interpreter shutdown runs.
    """

    #: Seconds after an interrupt during which another SIGINT is ignored.
    REPEAT_S = 1.0
    #: Seconds before a dropped interrupt is raised again.
    RETRY_S = 0.05

    def __init__(self) -> None:
        self.interrupted = False
        #: Set once the interrupt is being reported: later SIGINTs are then ignored.
        self.exiting = False
        self._at = 0.0
        self._again = False
        self._unraisable_hook = sys.unraisablehook

    def install(self) -> None:
        """Take over SIGINT and :data:`sys.unraisablehook` (main thread only)."""
        import signal
        import threading

        if threading.current_thread() is not threading.main_thread():
            return
        signal.signal(signal.SIGINT, self._on_sigint)
        self._unraisable_hook = sys.unraisablehook
        sys.unraisablehook = self._on_unraisable

    def _on_sigint(self, signum: int, frame: Any) -> None:
        import time

        now = time.monotonic()
        if self.exiting:
            return
        if self.interrupted and not self._again and now - self._at < self.REPEAT_S:
            return
        self._again = False
        self.interrupted, self._at = True, now
        raise KeyboardInterrupt

    def _on_unraisable(self, unraisable: Any) -> None:
        if isinstance(unraisable.exc_value, KeyboardInterrupt):
            import _thread
            import threading

            # Raised from here, it would be dropped again: a moment later, from another
            # thread, it reaches the main thread's own code (_on_sigint runs there).
            self._again = True
            later = threading.Timer(self.RETRY_S, _thread.interrupt_main)
            later.daemon = True
            later.start()
            return
        self._unraisable_hook(unraisable)

    def after_command(self, code: int) -> None:
        """The command is done, its output printed and its files written: a Ctrl-C from
        now on (during interpreter shutdown) ends the process at once with its ``code``."""
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, lambda signum, frame: self.exit_now(code))

    @staticmethod
    def exit_now(code: int) -> None:
        """Flush stdout and stderr, then end the process with ``code`` (no shutdown)."""
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):  # closed, or a reader that went away
                pass
        os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
