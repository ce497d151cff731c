"""movierec's rating predictor: SVD++-style factorisation with side features and a DCN cross.

See :mod:`movierec.ranking.rating_network` for the network. This module owns the
life cycle: a validation slice of the *training* ratings drives early stopping
(best weights restored), histories come from the ratings the network trains on,
and predictions are clipped to the data set's rating scale.

Defaults favour stability on rating logs: Adagrad with gradient clipping rather than
Adam (whose normalised steps let rarely rated ids overfit), narrow embeddings, and two
averaged members (the measurements behind these choices: ``benchmarks/NOTES.md``).

``members`` networks (seeds ``seed``, ``seed + 1``, ...; each early-stopped on its
own validation slice; a sharded training set, streamed from Parquet, brings one
validation part for all) are trained one after another and averaged by a
:class:`~movierec.ranking.rating_network.RatingEnsemble`, saved as one ``model.keras``.
Fit time grows linearly with members.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from movierec.data.features import (
    MAX_GENRES,
    MAX_TITLE_WORDS,
    FeatureTables,
    build_feature_tables,
)
from movierec.data.histories import pad_lists
from movierec.data.shards import ShardedTrainingSet
from movierec.data.training import TrainingSet
from movierec.errors import ModelError
from movierec.models.base import QueryBatch, Ranker
from movierec.models.checkpoints import Checkpoints
from movierec.models.inference import CompiledInference, bucket, pad_rows
from movierec.progress import logger
from movierec.ranking.feeds import rating_feeds, unique_queries
from movierec.ranking.rating_network import RatingEnsemble, RatingNetwork
from movierec.ranking.settings import DcnSettings
from movierec.ranking.trainer import Feeds, Trainer, TrainOptions

#: Pairs scored per network call in predict.
PREDICT_CHUNK = 4096
#: Smallest padded pair count: requests of 1..64 pairs share one compiled program.
MIN_PAIRS = 64


class RatingModel(Ranker):
    """Predicts stars from ids, side features and the user's rating history."""

    name = "dcn"

    settings_class = DcnSettings

    streams = True
    #: (network, its compiled forward pass), made on first use.
    _compiled: tuple[Any, CompiledInference] | None = None
    #: Trains with :class:`~movierec.ranking.trainer.Trainer`: checkpoints, resume, processes.
    resumable = True

    def fit(
        self,
        train: TrainingSet | ShardedTrainingSet,
        *,
        verbose: int = 1,
        options: TrainOptions | None = None,
    ) -> dict[str, list[float]]:
        """Train ``members`` networks one after another and keep their mean.

        ``options`` add checkpoints, resume and the devices (of one or several
        processes) to train on; see :mod:`movierec.ranking.trainer`. Returns member 0's
        history; later members' keys carry a ``member{i}_`` prefix.
        """
        import jax

        s = self.settings
        low, high = train.dataset.rating_scale
        s.update(min_rating=float(low), max_rating=float(high))
        if len(train) == 0:
            raise ModelError("cannot train the rating model on an empty training set")
        options = options or TrainOptions(progress=verbose > 0)
        devices = options.devices or jax.local_devices()[:1]
        options.devices = devices
        checkpoints = None
        if options.checkpoint_dir is not None:
            fingerprint = {
                "model": self.name,
                "settings": {k: v for k, v in s.items() if k != "epochs"},
                "users": train.users.size,
                "movies": train.movies.size,
                "ratings": len(train),
                "devices": len(devices),
                "processes": jax.process_count(),
            }
            checkpoints = Checkpoints(
                options.checkpoint_dir, fingerprint, writes=jax.process_index() == 0
            )
            if options.resume:
                checkpoints.check_resumable()
            elif checkpoints.writes:
                checkpoints.directory.mkdir(parents=True, exist_ok=True)
        tables = build_feature_tables(train)
        members: list[RatingNetwork] = []
        log: dict[str, list[float]] = {}
        for i in range(int(s["members"])):
            seed = int(s["seed"]) + i
            keras.utils.set_random_seed(seed)
            feeds = self._feeds(train, seed, devices)
            network = self._build_network(train, tables, feeds.mean_rating)
            done = checkpoints.load_member(i) if checkpoints and options.resume else None
            if done is not None:
                weights, history = done
                variables = network.trainable_variables + network.non_trainable_variables
                for variable, value in zip(variables, weights, strict=True):
                    variable.assign(value)
            else:
                resume = checkpoints.load_state(i) if checkpoints and options.resume else None
                trainer = Trainer(network, {**s, "seed": seed}, options)
                history = trainer.fit(
                    feeds,
                    epochs=int(s["epochs"]),
                    patience=int(s["patience"]),
                    checkpoints=checkpoints,
                    member=i,
                    resume=resume,
                    label=_member_label(i, int(s["members"])),
                )
                if checkpoints is not None:
                    variables = network.trainable_variables + network.non_trainable_variables
                    checkpoints.save_member(i, [np.asarray(v.value) for v in variables], history)
                if options.progress:
                    logger.info(_stopping_line(i, int(s["members"]), history, s))
            members.append(network)
            prefix = f"member{i}_" if i else ""
            log.update({prefix + k: v for k, v in history.items()})
        self.network = RatingEnsemble(members)
        return log

    def _feeds(self, train: TrainingSet | ShardedTrainingSet, seed: int, devices: list) -> Feeds:
        import jax

        process = jax.process_index()
        local = [d for d in devices if d.process_index == process]
        return rating_feeds(
            train,
            self.settings,
            seed,
            devices=len(devices),
            first_device=devices.index(local[0]) if local else 0,
            local_devices=len(local),
            process_index=process,
            process_count=jax.process_count(),
        )

    def predict(self, queries: QueryBatch, movie_index: np.ndarray) -> np.ndarray:
        """Predicted stars of ``movie_index[i]`` for ``queries[i]``, clipped to the
        rating scale; scored in chunks, each distinct query once."""
        self.require_network()
        movie_index = np.asarray(movie_index, dtype=np.int32).reshape(-1)
        if len(movie_index) != len(queries):
            raise ValueError("predict needs one movie per query")
        out = np.zeros(len(queries), np.float32)
        for begin in range(0, len(queries), PREDICT_CHUNK):
            rows = np.arange(begin, min(begin + PREDICT_CHUNK, len(queries)))
            out[rows] = self._predict_chunk(queries.take(rows), movie_index[rows])
        return np.clip(out, self.settings["min_rating"], self.settings["max_rating"])

    def _predict_chunk(self, queries: QueryBatch, movie: np.ndarray) -> np.ndarray:
        """Score one chunk, each distinct query once; shapes padded to powers of two
        so that serving many request sizes compiles only a few programs."""
        network = self.require_network()
        first, slot = unique_queries(queries)
        distinct = queries.take(first)
        width = self.settings["history_length"]
        history, history_rating = pad_lists(
            distinct.histories, distinct.history_ratings, len(first), width
        )
        n_queries, n_pairs = bucket(len(first), 1), bucket(len(movie), MIN_PAIRS)

        def known(index: np.ndarray, size: int, rows: int) -> np.ndarray:
            """``index`` with out-of-range entries mapped to 0 (unknown), padded to ``rows``."""
            index = np.where((index < 0) | (index >= size), 0, index).astype(np.int32)
            return pad_rows(index, rows)

        inputs = {
            "user": known(distinct.user_index, network.num_users, n_queries),
            "history": known(history, network.num_movies, n_queries),
            "history_rating": pad_rows(history_rating, n_queries),
            "slot": known(slot, n_queries, n_pairs),
            "movie": known(movie, network.num_movies, n_pairs),
        }
        return np.asarray(self._forward(network, inputs)).reshape(-1)[: len(movie)]

    def _forward(self, network: keras.Model, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """One jitted inference call: far less overhead than ``predict_on_batch``."""
        if self._compiled is None or self._compiled[0] is not network:
            self._compiled = (network, CompiledInference(network, network.call))
        return self._compiled[1](inputs)

    def _build_network(
        self, train: TrainingSet | ShardedTrainingSet, tables: FeatureTables, mean_rating: float
    ) -> RatingNetwork:
        s = self.settings
        network = RatingNetwork(
            num_users=train.users.size,
            num_movies=train.movies.size,
            feature_sizes=tables.sizes(),
            genres_per_movie=MAX_GENRES,
            words_per_title=MAX_TITLE_WORDS,
            embedding_dim=s["embedding_dim"],
            cross_layers=s["cross_layers"],
            hidden_units=s["hidden_units"],
            dropout=s["dropout"],
            l2=s["l2"],
            history_l2=s["history_l2"],
            history_shrinkage=s["history_shrinkage"],
            mean_rating=mean_rating,
        )
        network.build_weights()
        network.set_feature_tables(tables.user, tables.movie)
        return network


def _member_label(member: int, members: int) -> str:
    """How progress lines name the model (and the member, of several)."""
    label = f"{RatingModel.kind} '{RatingModel.name}'"
    return f"{label} member {member + 1}/{members}" if members > 1 else label


def _stopping_line(member: int, members: int, history: dict[str, list[float]], s: dict) -> str:
    """How a member's training ended: which epoch's weights were kept, and whether
    early stopping cut it short."""
    label = _member_label(member, members)
    ran = len(history.get("rmse", []))
    val = history.get("val_rmse") or []
    if not val:
        return f"{label}: trained {ran} epochs (no validation slice, last weights kept)"
    best = int(np.argmin(val))
    kept = f"kept epoch {best + 1} (val_rmse {val[best]:.4f})"
    if ran < int(s["epochs"]):
        return (
            f"{label}: stopped early after epoch {ran} of {s['epochs']} "
            f"(val_rmse not better for {s['patience']} epochs); {kept}"
        )
    return f"{label}: ran all {ran} epochs; {kept}"
