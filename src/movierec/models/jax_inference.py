"""The JAX backend's compiled inference: a Keras method under ``jax.jit``, stateless.

Imported by :class:`movierec.models.inference.CompiledInference` only when Keras runs
on JAX, so no other module needs JAX at import time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import keras
import numpy as np


def jit_stateless(model: keras.Model, method: Callable[..., Any]) -> Callable[[Any], Any]:
    """``method(inputs, training=False)`` jitted, reading ``model``'s variables per call.

    The variables' current values are passed in on every call (a stateless scope), so
    weights assigned after compiling (loading, fine-tuning) are used.

    Args:
        model: The Keras model whose variables ``method`` reads.
        method: A bound method of ``model`` (``call`` or a tower), taking inputs and
            ``training``.

    Returns:
        A function of ``inputs`` returning the method's output as a NumPy array.
    """
    variables = list(model.variables)

    def run(values: list, inputs: dict[str, Any]) -> Any:
        mapping = list(zip(variables, values, strict=True))
        with keras.StatelessScope(state_mapping=mapping):
            return method(inputs, training=False)

    jitted = jax.jit(run)
    return lambda inputs: np.asarray(jitted([v.value for v in variables], inputs))
