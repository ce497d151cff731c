"""``serve --retrain-every``: retrain in a separate low-priority process, then reload.

Every period the service starts ``movierec retrain --models DIR --nice 10 --quiet``
(:mod:`movierec.cli.retrain`) as a child process in its own session: training
never shares the service's interpreter, memory or thread pools, and the kernel
gives the service's threads the CPU first. When the child exits 0 (new models
verified and swapped into the directory), the service swaps them in through
:func:`~movierec.serving.app.reload_models`, the same verified hot reload as
``POST /admin/reload``: requests in flight finish on the old models, none fails.

A run that fails, whose new models fail verification, that the reload refuses, or
that is still running when the period is over (it is then stopped) leaves the
live models serving; each outcome is counted in ``/metrics``
(``movierec_retrain_runs_total{result=...}``) and logged with the child's last
lines. After an overrun the next run starts one period later.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from movierec.errors import MovierecError

logger = logging.getLogger("movierec.serving")

#: Shortest and longest --retrain-every.
MIN_PERIOD_S = 1.0
MAX_PERIOD_S = 366 * 86400.0
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
#: Environment variable carrying the ratings database URL to the child (see
#: :data:`movierec.cli.retrain.RATINGS_DB_ENV`; not on its command line, where ``ps``
#: would show a password).
RATINGS_DB_ENV = "MOVIEREC_RATINGS_DB"
#: Seconds a stopped child has to clean up (SIGINT) before it is killed.
STOP_GRACE_S = 10.0
#: Lines of the child's output kept for the log.
TAIL_LINES = 5
#: Outcomes of a run, the ``result`` label of ``movierec_retrain_runs_total``.
RESULTS = ("ok", "failed", "rejected", "timeout", "reload_refused")
#: The child's exit status when its new models failed verification.
REJECTED_EXIT = 3


def parse_duration(text: str) -> float:
    """Seconds in ``text``: one or more NUMBER+UNIT parts, units s, m, h, d (``30m``,
    ``6h``, ``1h30m``, ``90s``).

    Raises:
        MovierecError: Not such a duration, or outside 1 s to 366 days.
    """
    spelled = text.strip().lower()
    parts = _DURATION.findall(spelled)
    if not spelled or "".join(n + u for n, u in parts) != spelled:
        raise MovierecError(
            f"--retrain-every expects a duration such as 30m, 6h, 1d or 1h30m "
            f"(units s, m, h, d), got {text!r}"
        )
    seconds = sum(float(number) * UNITS[unit] for number, unit in parts)
    if not MIN_PERIOD_S <= seconds <= MAX_PERIOD_S:
        raise MovierecError(
            f"--retrain-every must be between {MIN_PERIOD_S:g} s and 366 days, got {text!r}"
        )
    return seconds


def retrain_command(models_dir: Path) -> list[str]:
    """The child's command line: this interpreter running ``movierec retrain``."""
    return [sys.executable, "-m", "movierec.cli.main", "retrain", "--models", str(models_dir),
            "--nice", "10", "--quiet"]  # fmt: skip


class RetrainSchedule:
    """Runs the retrain child every ``period`` seconds and reloads on success.

    Args:
        period: Seconds from one run's start to the next's; also each run's limit.
        command: The child's command line (:func:`retrain_command`).
        db_url: The ratings database, passed in the child's environment.
        reload: Swaps the new models in (the app's reload); raises to refuse them.
        registry: The ``prometheus_client.CollectorRegistry`` that the
            ``movierec_retrain_*`` metrics go to.
    """

    def __init__(
        self,
        period: float,
        command: Sequence[str],
        db_url: str,
        reload: Callable[[], Awaitable[Any]],
        registry: Any,
    ):
        from prometheus_client import Counter, Gauge

        self.period = period
        self.command = list(command)
        self.db_url = db_url
        self.reload = reload
        self.runs = Counter(
            "movierec_retrain_runs",
            "Scheduled retrains by outcome: ok (new models live), failed, rejected (failed "
            "verification), timeout (overran the period), reload_refused",
            ["result"],
            registry=registry,
        )
        for result in RESULTS:
            self.runs.labels(result)  # every outcome shows, at 0, from the start
        self.running = Gauge(
            "movierec_retrain_running", "1 while a retrain child runs", registry=registry
        )
        self.last_seconds = Gauge(
            "movierec_retrain_last_duration_seconds",
            "How long the last retrain ran",
            registry=registry,
        )
        self.last_finished = Gauge(
            "movierec_retrain_last_finished_timestamp_seconds",
            "When the last retrain ended (Unix time)",
            registry=registry,
        )
        self.last_success = Gauge(
            "movierec_retrain_last_success_timestamp_seconds",
            "When a retrain last put new models live (Unix time; 0: not yet)",
            registry=registry,
        )
        #: The last run's outcome (one of :data:`RESULTS`) and when the next one starts.
        self.last_result: str | None = None
        self.next_at: float | None = None
        self._child: subprocess.Popen[bytes] | None = None

    def status(self) -> dict[str, Any]:
        """For ``/version``: the period, the last outcome and the next start (UTC)."""
        return {
            "every_seconds": self.period,
            "running": self._child is not None,
            "last_result": self.last_result,
            "next_at": _utc(self.next_at) if self.next_at is not None else None,
        }

    async def run_forever(self) -> None:
        """Run every period until cancelled (the app's shutdown), the first one period
        after start."""
        start = time.time() + self.period
        while True:
            self.next_at = start
            await asyncio.sleep(max(0.0, start - time.time()))
            result = await self.run_once()
            # start to start; after an overrun a full period from its end
            start = max(
                start + self.period, time.time() + (self.period if result == "timeout" else 0.0)
            )

    async def run_once(self) -> str:
        """One retrain and, when it succeeds, the reload; its outcome (:data:`RESULTS`)."""
        started = time.perf_counter()
        self.running.set(1)
        try:
            result, detail = await self._retrain()
            if result == "ok":
                try:
                    await self.reload()
                except Exception as error:  # noqa: BLE001 - any refusal keeps the old live
                    result, detail = "reload_refused", str(getattr(error, "detail", error))
        finally:
            self.running.set(0)
        seconds = time.perf_counter() - started
        self.runs.labels(result).inc()
        self.last_seconds.set(seconds)
        self.last_finished.set(time.time())
        self.last_result = result
        if result == "ok":
            self.last_success.set(time.time())
            logger.info("retrain ok in %.1f s: %s", seconds, detail)
        else:
            logger.warning(
                "retrain %s after %.1f s, the live models keep serving: %s", result, seconds, detail
            )
        return result

    async def _retrain(self) -> tuple[str, str]:
        """Run the child within the period; (outcome, its last lines)."""
        env = {**os.environ, RATINGS_DB_ENV: self.db_url}
        # The child imports the same movierec as this process, installed or not.
        package_root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (package_root, os.environ.get("PYTHONPATH")) if p
        )
        try:
            # subprocess, not the event loop's own: uvloop forks through Python's
            # at-fork hooks, where JAX warns of a deadlock (the child execs at once).
            child = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # its own process group: stopped as a whole
            )
        except OSError as error:
            return "failed", f"cannot start {self.command[0]}: {error}"
        self._child = child
        try:
            output, _ = await asyncio.to_thread(child.communicate, None, self.period)
        except subprocess.TimeoutExpired:
            await self._stop(child)
            return "timeout", f"still running after the period ({self.period:g} s); stopped"
        finally:
            if child.poll() is None:  # cancelled (shutdown): stop it too
                await asyncio.shield(self._stop(child, drain=False))
            self._child = None
        tail = " | ".join(output.decode(errors="replace").strip().splitlines()[-TAIL_LINES:])
        if child.returncode == 0:
            return "ok", tail
        if child.returncode == REJECTED_EXIT:
            return "rejected", tail
        return "failed", f"exit status {child.returncode}: {tail}"

    async def _stop(self, child: subprocess.Popen, *, drain: bool = True) -> None:
        """SIGINT to the child's group (it removes its staging directory), then SIGKILL.

        ``drain``: read the child's output meanwhile (unless a thread still does), so
        that it never blocks on a full pipe while it cleans up.
        """
        wait = (
            (lambda: child.communicate(timeout=STOP_GRACE_S))
            if drain
            else (lambda: child.wait(STOP_GRACE_S))
        )
        for sig in (signal.SIGINT, signal.SIGKILL):
            if child.poll() is not None:
                return
            try:
                os.killpg(child.pid, sig)
            except ProcessLookupError:
                return
            try:
                await asyncio.to_thread(wait)
            except subprocess.TimeoutExpired:
                continue


def _utc(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))
