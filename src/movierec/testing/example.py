"""The example model pair, trained through the command line on planted data.

Service, CLI and browser tests need a trained pair of models but not a good one:
:func:`train_example_models` trains both example models (seconds) the way a person
would, with ``movierec train all``; a test suite trains it once per session and shares
the directory read-only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from movierec.cli.main import main
from movierec.data.loading import load_dataset
from movierec.data.splits import Split, split_from_manifest
from movierec.data.training import TrainingSet
from movierec.models.artifacts import load_model
from movierec.models.base import Ranker, Retriever
from movierec.pipeline import Recommender
from movierec.testing.planted import make_planted_dataset, write_ml_latest


def train_example_models(root: Path, *, seed: int = 7, epochs: int = 4) -> tuple[Path, Recommender]:
    """Train the example pair on the planted set with ``movierec train all --holdout``.

    Writes the planted set as GroupLens files to ``root/data`` and the models to
    ``root/models``.

    Args:
        root: An empty directory.
        seed: ``--seed``.
        epochs: ``--epochs``.

    Returns:
        (the models directory, a :class:`Recommender` loaded from it).

    Raises:
        RuntimeError: If the command fails.
    """
    data = write_ml_latest(make_planted_dataset(), root / "data")
    models = root / "models"
    code = main(
        ["train", "all", "--model", "example", "--data", str(data), "--models", str(models),
         "--epochs", str(epochs), "--set", "batch_size=128", "--quiet", "--seed", str(seed),
         "--holdout"]
    )  # fmt: skip
    if code != 0:
        raise RuntimeError(f"movierec train all exited with {code}")
    return models, Recommender.load(models)


@dataclass(frozen=True)
class ExamplePair:
    """A trained pair read back as objects, with the split it was trained on."""

    models: Path
    split: Split
    train: TrainingSet
    retriever: Retriever
    ranker: Ranker


def load_example_pair(models: Path) -> ExamplePair:
    """Read a pair saved by :func:`train_example_models` back, with its split.

    Args:
        models: The models directory.

    Returns:
        The pair; its split re-created from the manifest and checked against the
        training set.
    """
    retrieval, ranking = load_model(models / "retrieval"), load_model(models / "ranking")
    ratings = load_dataset(retrieval.manifest["data_source"]).ratings
    split = split_from_manifest(ratings, retrieval.manifest["split"])
    if len(split.train) != len(retrieval.train.rating):
        raise AssertionError("the re-created split does not match the training set")
    return ExamplePair(models, split, retrieval.train, retrieval.retriever, ranking.ranker)
