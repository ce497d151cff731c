"""movierec: a two-stage movie recommender on Keras 3 and keras-rs.

In Python (answers are pandas DataFrames, best first)::

    import movierec
    data = movierec.load_data("ml-100k")      # or a directory of MovieLens files
    split = movierec.split(data, seed=42)     # random 80/20 (also "temporal", ...)
    rec = movierec.train(split)               # two-tower retrieval + dcn ranking
    print(rec.recommend("42", k=10))          # rec.save("models"); movierec.load("models")

The API: :func:`load_data`, :func:`split`, :func:`train` (both models) and
:func:`train_model` (one), :func:`evaluate`, :func:`load`, :func:`default_settings`,
and :class:`Recommender` with ``recommend``, ``recommend_for_ratings``, ``rank``,
``similar``, ``search`` and ``save``. They live in :mod:`movierec.api` and are
imported on first use, so ``import movierec`` stays light.

Keras picks its backend when first imported; movierec defaults it to JAX
(the examples' choice, and no TensorFlow needed). Set KERAS_BACKEND to override.
"""

import os

from movierec._version import __version__ as __version__

os.environ.setdefault("KERAS_BACKEND", "jax")

__all__ = [
    "DataSplit",
    "Recommender",
    "TrainedModel",
    "default_settings",
    "evaluate",
    "load",
    "load_data",
    "split",
    "train",
    "train_model",
]


def __getattr__(name: str):
    """Import :mod:`movierec.api` on first use of one of its names."""
    if name in __all__:
        from movierec import api

        return getattr(api, name)
    raise AttributeError(f"module 'movierec' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
