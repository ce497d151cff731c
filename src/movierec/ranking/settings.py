"""Settings of the ranking models (see :mod:`movierec.models.settings`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from movierec.models.settings import ExampleSettings, ModelSettings, setting, share


@dataclass(frozen=True)
class DcnSettings(ModelSettings):
    """movierec's rating predictor (``--model dcn``)."""

    model_name: ClassVar[str] = "dcn"

    embedding_dim: int = setting(32, "width of the user and movie vectors", minimum=1)
    cross_layers: int = setting(1, "keras-rs FeatureCross (DCN) layers in the residual", minimum=0)
    hidden_units: int = setting(64, "ReLU units after the cross layers", minimum=1)
    dropout: float = share(0.2, "dropout on the residual's input")
    l2: float = setting(0.03, "L2 penalty on the id and feature rows a batch uses", minimum=0.0)
    history_l2: float = setting(
        0.03, "L2 penalty on the history (SVD++) rows a batch uses", minimum=0.0
    )
    history_shrinkage: float = setting(
        10.0, "pseudo-count pulling a user's mean rating offset towards 0", minimum=0.0
    )
    history_length: int = setting(256, "most rated movies a user's profile reads", minimum=1)
    id_dropout: float = share(
        0.05, "share of user ids hidden in training, so history-only users work"
    )
    optimizer: Literal["adagrad"] = setting(
        "adagrad", "Adagrad, as the trainer's row-sparse updates implement it"
    )
    learning_rate: float = setting(0.2, "optimizer step size", above=0.0)
    clipnorm: float = setting(1.0, "global gradient-norm clip", above=0.0)
    users_per_batch: int = setting(128, "users in one training batch", minimum=1)
    ratings_per_user: int = setting(8, "ratings of each user in one batch", minimum=1)
    epochs: int = setting(
        40, "most passes over the ratings (early stopping ends sooner)", minimum=1
    )
    steps_per_epoch: int = setting(
        0, "most steps an epoch trains (0: all); bounds a timing run", minimum=0
    )
    patience: int = setting(3, "epochs without a better validation RMSE before stopping", minimum=1)
    validation_fraction: float = share(
        0.05, "share of training ratings held out for early stopping (0: none)"
    )
    seed: int = setting(42, "seed of weights, batches and validation slice (member i: seed + i)")
    members: int = setting(2, "networks trained with different seeds and averaged", minimum=1)
    sparse_updates: bool = setting(
        True, "update only the user-table rows a batch uses (false: every row, as Keras does)"
    )
    min_rating: float = setting(1.0, "lowest star; set from the data set when training")
    max_rating: float = setting(5.0, "highest star; set from the data set when training")


@dataclass(frozen=True)
class ExampleRankingSettings(ExampleSettings):
    """The keras-rs basic ranking example (``--model example``): 5 epochs."""

    model_name: ClassVar[str] = "ranking 'example'"

    min_rating: float = setting(1.0, "lowest star; set from the data set when training")
    max_rating: float = setting(5.0, "highest star; set from the data set when training")
