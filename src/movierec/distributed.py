"""Data-parallel training over several devices with Keras's distribution API.

Why Keras's API and not raw JAX: the models stay plain Keras code; the same
``DataParallel`` spans one host's devices or, after ``jax.distributed.initialize()``
on every host, all devices of a JAX multi-host cluster. On a CPU-only machine,
``XLA_FLAGS=--xla_force_host_platform_device_count=N`` (set before Python starts)
splits the CPU into N devices, which is how this is tested.

Every batch is split evenly across devices, so the batch size and the number of
training examples must both be divisible by N (JAX refuses uneven shards).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from movierec.errors import MovierecError

CPU_HINT = (
    "on a CPU-only machine, start Python with "
    "XLA_FLAGS=--xla_force_host_platform_device_count={n} to split the CPU into {n} devices"
)


def check_devices(devices: int) -> list[str]:
    """The first ``devices`` Keras devices, or a clear error when there are fewer."""
    import keras

    if isinstance(devices, bool) or not isinstance(devices, int) or devices < 1:
        raise MovierecError(f"--devices must be a positive integer, got {devices!r}")
    available = keras.distribution.list_devices()
    if len(available) < devices:
        hint = CPU_HINT.format(n=devices)
        raise MovierecError(
            f"--devices {devices} asked for, but only {len(available)} device(s) found "
            f"({', '.join(available)}); {hint}"
        )
    return available[:devices]


def check_batch_size(settings: dict[str, Any], devices: int) -> None:
    """A batch splits evenly over the devices, or the user is told which size would."""
    batch = settings.get("batch_size")
    if devices > 1 and isinstance(batch, int) and batch % devices:
        lower = max(devices, batch - batch % devices)
        raise MovierecError(
            f"batch_size {batch} does not split over {devices} devices; "
            f"use a multiple of {devices}, e.g. --set batch_size={lower}"
        )


def trim_to_multiple(frame: Any, devices: int) -> Any:
    """Drop the last ``len % devices`` rows, so that the final batch splits evenly too.

    At most ``devices - 1`` training ratings are lost; models that draw their own
    examples (not one per rating) must make their batches divisible themselves.
    """
    extra = len(frame) % devices
    return frame.iloc[: len(frame) - extra] if extra else frame


@contextmanager
def data_parallel(devices: int) -> Iterator[None]:
    """Train under ``DataParallel`` over ``devices`` devices; restore the previous
    distribution after, so evaluation and prediction run on one device with any size."""
    if devices == 1:
        yield
        return
    import keras

    chosen = check_devices(devices)
    previous = keras.distribution.distribution()
    # Across processes, each feeds its own slice of every batch (the model's data
    # already is per process): nothing for Keras to shard.
    import jax

    one = jax.process_count() == 1
    distribution = keras.distribution.DataParallel(devices=chosen, auto_shard_dataset=one)
    keras.distribution.set_distribution(distribution)
    try:
        yield
    finally:
        keras.distribution.set_distribution(previous)


# -- several processes (JAX's multi-process runtime) --------------------------------

#: JAX's own variables, read when the command line does not give the settings.
PROCESS_ENV = ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID")


@dataclass(frozen=True)
class Processes:
    """Where this process stands among the processes of one training run."""

    coordinator: str | None = None
    count: int = 1
    index: int = 0

    @property
    def several(self) -> bool:
        """Whether more than one process takes part."""
        return self.count > 1

    @property
    def writes(self) -> bool:
        """Only process 0 writes models and checkpoints."""
        return self.index == 0


def process_settings(
    coordinator: str | None,
    count: int | None,
    index: int | None,
    environ: Mapping[str, str] | None = None,
) -> Processes:
    """The multi-process settings from the command line, else JAX's variables; checked.

    Args:
        coordinator: ``HOST:PORT`` of process 0 (``--coordinator``), or ``None``.
        count: Number of processes (``--num-processes``), or ``None``.
        index: This process's index (``--process-id``), or ``None``.
        environ: Where to read :data:`PROCESS_ENV` for the settings not given;
            ``os.environ`` when ``None``.

    Returns:
        The checked :class:`Processes`; the single-process default when the count is
        missing or 1.

    Raises:
        MovierecError: A variable that is not an integer, a count below 1, a
            coordinator without a count, a count above 1 without coordinator or
            index, a malformed ``HOST:PORT``, or an index outside ``0..count-1``.
    """
    environ = os.environ if environ is None else environ
    coordinator = coordinator or environ.get(PROCESS_ENV[0]) or None

    def number(value: int | None, name: str, flag: str) -> int | None:
        """``value`` if given, else the integer in variable ``name`` (``None`` if unset)."""
        if value is not None:
            return value
        raw = environ.get(name)
        if raw is None or raw == "":
            return None
        try:
            return int(raw)
        except ValueError:
            raise MovierecError(f"{name}={raw!r} is not an integer ({flag})") from None

    count = number(count, PROCESS_ENV[1], "--num-processes")
    index = number(index, PROCESS_ENV[2], "--process-id")
    if count is None or count == 1:
        if coordinator is not None and count is None:
            raise MovierecError("--coordinator needs --num-processes and --process-id")
        return Processes()
    if count < 1:
        raise MovierecError(f"--num-processes must be at least 1, got {count}")
    if coordinator is None or index is None:
        raise MovierecError(
            "--num-processes > 1 needs --coordinator HOST:PORT and --process-id "
            f"(or {', '.join(PROCESS_ENV)})"
        )
    host, sep, port = coordinator.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise MovierecError(f"--coordinator must be HOST:PORT, got {coordinator!r}")
    if not 0 <= index < count:
        raise MovierecError(f"--process-id must be in 0..{count - 1}, got {index}")
    return Processes(coordinator, count, index)


def initialize(processes: Processes, timeout_seconds: int = 60) -> None:
    """Join the run: JAX's coordination service plus gloo collectives on CPU.

    ``timeout_seconds`` bounds both the wait for every process to join and the
    heartbeat after which a silent process counts as dead. A process that dies
    mid-run breaks the collectives at once; the others then stop with
    :class:`ProcessLost` (see :func:`lost_process`).
    """
    if not processes.several:
        return
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(
            coordinator_address=processes.coordinator,
            num_processes=processes.count,
            process_id=processes.index,
            initialization_timeout=timeout_seconds,
            heartbeat_timeout_seconds=timeout_seconds,
        )
    except Exception as error:  # JAX raises plain RuntimeError/XlaRuntimeError
        raise MovierecError(
            f"cannot join the training run at {processes.coordinator} as process "
            f"{processes.index} of {processes.count}: {_first_line(error)}"
        ) from None


class ProcessLost(MovierecError):
    """Another training process died or cannot be reached; this one stops."""


def lost_process(error: BaseException) -> ProcessLost:
    """The error to stop with when a step across processes failed with ``error``
    (most likely because another process died): it says how to resume."""
    return ProcessLost(
        "another training process stopped or cannot be reached, so this one stops too "
        f"({_first_line(error)}); resume from the last checkpoint with --resume"
    )


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:300] if text else type(error).__name__


def training_devices(devices: int) -> list[Any]:
    """The JAX devices a run trains on: every device of every process when several
    processes take part (process by process), else the first ``devices`` of this one."""
    import jax

    if jax.process_count() > 1:
        return sorted(jax.devices(), key=lambda d: (d.process_index, d.id))
    check_devices(devices)
    return jax.local_devices()[:devices]


def local_network(network: Any) -> Any:
    """A copy of ``network`` with this process's values of its weights, on this process
    alone: after training across processes, the weights are arrays that span every
    process, which one process cannot evaluate or save by itself."""
    import numpy as np

    values = [np.asarray(v.value.addressable_data(0)) for v in network.weights]
    copy = type(network).from_config(network.get_config())
    build = network.get_build_config()
    if build and not copy.built:
        copy.build_from_config(build)
    for variable, value in zip(copy.weights, values, strict=True):
        variable.assign(value)
    return copy
