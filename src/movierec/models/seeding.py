"""Seeded training that leaves the caller's random generators as they were.

Keras initialisers without an explicit seed draw from Keras's global seed, so a
model seeds it (``keras.utils.set_random_seed``) to be reproducible; that call also
reseeds Python's ``random`` and NumPy's global generator. :func:`keeping_random_state`
puts all three back afterwards, so a library call never changes the random streams
of the program around it (a notebook's ``np.random`` draws, another model's fit).
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import numpy as np

F = TypeVar("F", bound=Callable[..., Any])

_KERAS_ATTRIBUTES = ("global_random_seed", "global_seed_generator")


@contextmanager
def keeping_random_state() -> Iterator[None]:
    """Restore Python's, NumPy's and (if loaded) Keras's global random state on exit."""
    python_state = random.getstate()
    numpy_state = np.random.get_state()
    keras_state = _keras_state()
    try:
        yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
        _restore_keras_state(keras_state)


def keeps_random_state(method: F) -> F:
    """Decorator form of :func:`keeping_random_state` (applied to every model's ``fit``)."""
    if getattr(method, "_keeps_random_state", False):
        return method

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with keeping_random_state():
            return method(*args, **kwargs)

    wrapper._keeps_random_state = True  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


def _global_state() -> Any:
    import sys

    if "keras" not in sys.modules:  # nothing of Keras's to keep
        return None
    try:
        from keras.src.backend.common import global_state
    except ImportError:  # a Keras without this layout: its seed is not restored
        return None
    return global_state


def _keras_state() -> dict[str, Any] | None:
    state = _global_state()
    if state is None:
        return None
    return {name: state.get_global_attribute(name) for name in _KERAS_ATTRIBUTES}


def _restore_keras_state(saved: dict[str, Any] | None) -> None:
    state = _global_state()
    if state is None:
        return
    for name in _KERAS_ATTRIBUTES:
        state.set_global_attribute(name, (saved or {}).get(name))
