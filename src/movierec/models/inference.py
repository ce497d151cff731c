"""Fast inference for serving: a Keras method compiled once, whatever the backend.

Eager Keras calls dispatch every op separately and ``predict()`` sets up a data
pipeline per call; a compiled stateless call does neither, which is what a served
request needs (figures: ``benchmarks/NOTES.md``). Inputs are padded to a few row counts (powers of
two) so that varied request sizes compile only a handful of programs.

On the JAX backend (movierec's default) the call is ``jax.jit``-compiled by
:mod:`movierec.models.jax_inference`, the only module that imports JAX at the top;
on another ``KERAS_BACKEND`` it runs eagerly, so the models work there too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np


def bucket(n: int, minimum: int = 1) -> int:
    """Smallest power of two >= n (at least ``minimum``)."""
    return max(minimum, 1 << max(n - 1, 0).bit_length())


def pad_rows(array: np.ndarray, rows: int) -> np.ndarray:
    """``array`` with zero rows appended up to ``rows`` (itself when it has them all).

    Not ``np.pad``: its overhead is paid several times per served request.
    """
    if len(array) == rows:
        return array
    out = np.zeros((rows, *array.shape[1:]), array.dtype)
    out[: len(array)] = array
    return out


class CompiledInference:
    """``method(inputs, training=False)`` of ``model`` as one compiled function.

    Variable values are read at each call, so weights assigned after
    construction (loading, fine-tuning) are used.
    """

    def __init__(self, model: keras.Model, method: Callable[..., Any]):
        if keras.backend.backend() == "jax":
            from movierec.models.jax_inference import jit_stateless

            self._call = jit_stateless(model, method)
        else:
            self._call = lambda inputs: keras.ops.convert_to_numpy(method(inputs, training=False))

    def __call__(self, inputs: dict[str, Any]) -> np.ndarray:
        return np.asarray(self._call(inputs))
