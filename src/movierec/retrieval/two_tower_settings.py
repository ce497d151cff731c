"""Settings of the two-tower retriever (``--model two-tower``); see :mod:`movierec.models.settings`.

Why the defaults are what they are, and the measurements behind them, are in the
README's model notes and ``benchmarks/results/quality-*.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from movierec.models.settings import ModelSettings, setting

Activation = Literal["tanh", "relu", "gelu", "silu", "sigmoid", "elu", "selu", "linear"]


@dataclass(frozen=True)
class TwoTowerSettings(ModelSettings):
    """The default retriever: history-driven two-tower model trained with a full softmax."""

    model_name: ClassVar[str] = "two-tower"

    seed: int = setting(42, "seed of the weights and of each epoch's history thinning")
    epochs: int = setting(40, "passes over the users", minimum=1)
    steps_per_epoch: int | None = setting(
        None, "training steps per epoch (null: one pass over the users); bounds a trial run",
        minimum=1,
    )
    batch_size: int = setting(64, "users (or, in-batch, ratings) per training batch", minimum=1)
    learning_rate: float = setting(3e-3, "Adam step size", above=0.0)
    cosine_decay: bool = setting(True, "decay the step size to 0 along a cosine")
    embedding_dim: int = setting(512, "width of the movie and query embeddings", minimum=1)
    feature_dim: int = setting(32, "width of the id-feature embeddings", minimum=1)
    activation: Activation = setting("tanh", "activation of the query tower's dense layers")
    history_pooling: Literal["mean", "sqrt"] = setting(
        "mean", "pooling of history embeddings: mean, or sum / sqrt(count)"
    )
    history_dropout: float = setting(
        0.8, "share of each history hidden from the query every epoch", minimum=0.0, below=1.0
    )
    rating_weighting: Literal["none", "linear"] = setting(
        "none", "how much a rated movie counts in the history: equally, or stars / 5"
    )
    user_id_dropout: float = setting(
        0.5, "share of user ids hidden in training", minimum=0.0, maximum=1.0
    )
    use_user_id: bool = setting(False, "add a per-user id embedding to the query")
    use_user_features: bool = setting(False, "add age, gender, occupation and zip to the query")
    use_movie_features: bool = setting(True, "add genres, year and title words to movies")
    query_dropout: float = setting(
        0.0, "dropout on the query tower's input", minimum=0.0, below=1.0
    )
    l2: float = setting(0.0, "L2 penalty on embeddings and the query projection", minimum=0.0)
    temperature: float = setting(1.0, "softmax temperature of the training scores", above=0.0)
    negatives: Literal["full", "in-batch"] = setting(
        "full", "softmax over the whole catalogue, or over the batch's targets (large catalogues)"
    )
    item_item_rank: int = setting(
        512, "eigenpairs kept by the low-rank EASE item-item path (0: no path)", minimum=0
    )
    item_item_lambda: float | None = setting(
        None, "EASE's L2 regularisation (null: chosen on held-out training ratings)", above=0.0
    )
    item_item_share: float = setting(
        0.15, "spread of the item-item scores relative to the deep part's", minimum=0.0
    )
    item_item_session_seconds: float = setting(
        1800.0, "time scale of co-rating closeness (weight 0.25 + 0.75 exp(-gap / it))", above=0.0
    )
    item_item_far_weight: float = setting(
        0.25, "weight of co-ratings far apart in time (1: plain EASE)", minimum=0.0, maximum=1.0
    )
    recent_popularity_weight: float = setting(
        0.05,
        "weight of 'popular when the user was last active' beside the deep part's spread "
        "(0: off)",
        minimum=0.0,
    )
    recent_popularity_buckets: int = setting(
        16, "time spans (equal rating counts) that popularity is counted in", minimum=1
    )
    short_history_length: int = setting(
        20, "histories shorter than this lean on the short-history path (0: no such path)",
        minimum=0,
    )
    short_history_rank: int = setting(
        128, "eigenpairs the short-history item-item path keeps", minimum=1
    )
    short_history_lambda: float | None = setting(
        None, "its ridge lambda (null: one chosen per length on queries of 1-10 ratings)",
        above=0.0,
    )
    similar_deep_weight: float = setting(
        1.0, "weight of the deep embeddings' cosine beside the EASE row in similar", minimum=0.0
    )
    similar_rating_weight: float = setting(
        0.5, "weight of the ratings' cosine (loved by the same people) in similar", minimum=0.0
    )
    hidden_dim: int = setting(1024, "hidden layer before the query projection (0: none)", minimum=0)
    ema_momentum: float = setting(
        0.99,
        "momentum of the weights' moving average that is saved (0: off)",
        minimum=0.0,
        below=1.0,
    )
