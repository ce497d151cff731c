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

from collections.abc import Iterator
from contextlib import contextmanager
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
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=chosen))
    try:
        yield
    finally:
        keras.distribution.set_distribution(previous)
