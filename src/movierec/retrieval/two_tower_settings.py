"""Settings of the two-tower retriever (``--model two-tower``); see :mod:`movierec.models.settings`.

Defaults were tuned on ML-100K (random 80/20 split, 3 seeds): the history carries the
signal and movie features add a little; a per-user id embedding and user features
overfit there (NDCG@10 0.44 -> 0.36), so they are off by default but stay available.
The item-item path was tuned with the deep part fixed. With every co-rating counted
the same (``item_item_far_weight`` 1: plain EASE) lambda 300 and weight 6 were best
(0.4566); weighting co-ratings by closeness in time lifts it to 0.4625 (30-minute
window, pairs far apart count 0.25, lambda 300, weight 4) and keeps the temporal split
at 0.175 (far weight 0: 0.4627, but temporal 0.170). Windows of 900-3600 s, lambdas of
100-300 and weights of 3-6 all reach 0.461-0.4635. A wide hidden layer before the query
projection (``hidden_dim``, 0 = none) lifts NDCG@10 0.4541 -> 0.4566 (512: 0.4554);
temperature, batch size and popularity-weighted targets did not help. Serving the
moving average of the weights (``ema_momentum``, 0 = off) adds 0.0006, on every seed,
at no cost in time (0.999 averages too long).
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
    kept_target_weight: float = setting(
        1.0, "target weight of history movies left visible (hidden ones weigh 1)", minimum=0.0
    )
    normalize_target: bool = setting(False, "make each user's targets sum to 1")
    temperature: float = setting(1.0, "softmax temperature of the training scores", above=0.0)
    negatives: Literal["full", "in-batch"] = setting(
        "full", "softmax over the whole catalogue, or over the batch's targets (large catalogues)"
    )
    item_item: bool | Literal["auto"] = setting(
        "auto", "frozen EASE item-item path in both towers (auto: catalogues up to 5,000)"
    )
    item_item_lambda: float = setting(300.0, "EASE's L2 regularisation", above=0.0)
    item_item_weight: float = setting(4.0, "weight of the item-item score in the sum", minimum=0.0)
    item_item_session_seconds: float = setting(
        1800.0, "time scale of co-rating closeness (weight 0.25 + 0.75 exp(-gap / it))", above=0.0
    )
    item_item_far_weight: float = setting(
        0.25, "weight of co-ratings far apart in time (1: plain EASE)", minimum=0.0, maximum=1.0
    )
    hidden_dim: int = setting(1024, "hidden layer before the query projection (0: none)", minimum=0)
    ema_momentum: float = setting(
        0.99,
        "momentum of the weights' moving average that is saved (0: off)",
        minimum=0.0,
        below=1.0,
    )
