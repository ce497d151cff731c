"""Test support for movierec and for models written against it.

The planted data sets and the model contract checks that movierec's own tests use,
public so that a model kept elsewhere can be held to the same contract (as
``lenskit.testing`` does for LensKit). Nothing here needs pytest; ``import movierec``
does not import this package.

- :mod:`movierec.testing.planted`: :func:`make_planted_dataset` (users in taste
  groups, so learning has a known answer), :func:`user_taste`, :func:`movie_taste`,
  :func:`write_ml_latest` (a data set as GroupLens files).
- :mod:`movierec.testing.contract`: the checks every retriever and ranker passes
  (learns the planted taste, beats the global mean, saves and loads to the same
  answers, refuses unknown ids, trains to the same answers with the same seed,
  refuses unknown saved settings) and the small settings each registered model
  trains with.
- :mod:`movierec.testing.processes`: ``movierec`` and ``movierec serve`` as child
  processes on 127.0.0.1 (:func:`start_cli`, :func:`start_server`, :func:`free_port`).
- :mod:`movierec.testing.example`: the example pair trained through
  ``movierec train all`` (:func:`train_example_models`), imported on demand as it
  loads the command line and the two-stage engine.
"""

from __future__ import annotations

from movierec.testing.planted import (
    TINY,
    make_planted_dataset,
    movie_taste,
    user_taste,
    write_ml_latest,
)
from movierec.testing.processes import free_port, small_dcn_args, start_cli, start_server

__all__ = [
    "TINY",
    "free_port",
    "make_planted_dataset",
    "movie_taste",
    "small_dcn_args",
    "start_cli",
    "start_server",
    "user_taste",
    "write_ml_latest",
]
