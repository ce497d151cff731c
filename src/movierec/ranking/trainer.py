"""The dcn ranker's training loop: row-sparse updates, checkpoints, several processes.

Why not ``keras.Model.fit``: three things it cannot do. (1) Keras on JAX updates
every row of an embedding table at every step, so with a million users a step costs
what the table costs, not what the batch touches; here each step gathers the rows of
the user and movie tables its batch uses into a small twin of the network,
differentiates that, and applies Adagrad to those rows only, in place (the state's
buffers are donated); ``sparse_updates=False`` keeps the dense update, as a yardstick.
The maths is the same: Adagrad leaves rows with a zero gradient untouched. (2) A run
must stop and resume mid-epoch with the very same batches, optimizer state and random
state (:mod:`movierec.ranking.batches` makes the batches a function of the epoch and
step). (3) Several processes must each feed
their own batches and agree on every update.

The network stays a plain Keras model: the step calls its ``stateless_call`` inside
a ``jax.shard_map`` over every training device (one or more per process); gradients
are summed across devices, so replicated weights stay identical everywhere.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from movierec.distributed import lost_process
from movierec.errors import ModelError
from movierec.models.checkpoints import Checkpoints, Resume
from movierec.progress import clock, epoch_line, logger
from movierec.ranking.batches import (
    Arrays,
    BatchBuilder,
    Plan,
    evaluation_batches,
    pad_movie_rows,
    step_batches,
)

#: Keras's Adagrad defaults, kept so the tuned learning rate means the same thing.
INITIAL_ACCUMULATOR = 0.1
EPSILON = 1e-7


@dataclass
class TrainOptions:
    """How a run trains, beyond the model's settings.

    ``checkpoint_dir``: where to save state (process 0 only) at every epoch end and,
    when ``checkpoint_steps`` > 0, every that many steps; ``resume``: continue from it.
    ``devices``: JAX devices to train on (default: this process's first device).
    """

    checkpoint_dir: Path | None = None
    resume: bool = False
    checkpoint_steps: int = 0
    devices: list[Any] | None = None
    progress: bool = True


@dataclass
class Feeds:
    """What one network trains on."""

    plan: Plan
    builder: BatchBuilder
    validation: Callable[[], Iterable[Arrays]] | None
    validation_builder: BatchBuilder | None
    mean_rating: float


# -- the training loop --------------------------------------------------------------


class Trainer:
    """Trains one :class:`~movierec.ranking.rating_network.RatingNetwork`; see the module doc."""

    def __init__(self, network: keras.Model, settings: dict[str, Any], options: TrainOptions):
        import jax

        if str(settings["optimizer"]).lower() != "adagrad":
            raise ModelError(
                f"the dcn trainer implements Adagrad (with row-sparse updates), "
                f"not {settings['optimizer']!r}"
            )
        self.network = network
        self.settings = settings
        self.options = options
        self.devices = options.devices or jax.local_devices()[:1]
        self.process = jax.process_index()
        self.local = [d for d in self.devices if d.process_index == self.process]
        if not self.local:
            raise ModelError("none of the training devices belongs to this process")
        self.sparse = bool(settings["sparse_updates"])
        self.learning_rate = float(settings["learning_rate"])
        clip = settings.get("clipnorm")
        self.clipnorm = float(clip) if clip else None
        self.mesh = jax.sharding.Mesh(np.array(self.devices), ("device",))
        tr = network.trainable_variables
        nt = network.non_trainable_variables
        # Row-indexed tables: (batch key of the rows a batch uses, trainable, non-trainable).
        user_tr = {id(network.user_embedding.embeddings), id(network.user_bias.embeddings)}
        movie_layers = (
            network.movie_embedding,
            network.movie_bias,
            network.implicit_embedding,
            network.rated_embedding,
        )
        movie_tr = {id(layer.embeddings) for layer in movie_layers}
        movie_nt = {id(network.movie_genres), id(network.movie_year), id(network.movie_words)}
        self.row_tables = [
            (
                key,
                [i for i, v in enumerate(tr) if id(v) in trainable],
                [i for i, v in enumerate(nt) if id(v) in fixed],
            )
            for key, trainable, fixed in (
                ("rows", user_tr, {id(network.user_features)}),
                ("movie_rows", movie_tr, movie_nt),
            )
        ]
        self._twins: dict[tuple[int, int], keras.Model] = {}
        self._step: Callable[..., Any] | None = None
        self._forward: Callable[..., Any] | None = None

    @property
    def several(self) -> bool:
        """Whether several processes train together (failures then mean a lost peer)."""
        import jax

        return jax.process_count() > 1

    # state: (trainable, non-trainable, accumulators), replicated on every device

    def _replicate(self, arrays: list[np.ndarray]) -> list[Any]:
        import jax

        sharding = jax.sharding.NamedSharding(self.mesh, jax.sharding.PartitionSpec())
        out = []
        for host in arrays:
            host = np.asarray(host)
            out.append(jax.make_array_from_callback(host.shape, sharding, host.__getitem__))
        return out

    def initial_state(self, arrays: dict[str, np.ndarray] | None) -> dict[str, list[Any]]:
        """The training state on every device: the network's weights and fresh Adagrad
        accumulators, or the checkpointed ``arrays`` (as :meth:`state_arrays` names them)."""
        tr = [np.asarray(v.value) for v in self.network.trainable_variables]
        nt = [np.asarray(v.value) for v in self.network.non_trainable_variables]
        acc = [np.full(v.shape, INITIAL_ACCUMULATOR, np.float32) for v in tr]
        if arrays is not None:
            tr = [arrays[f"tr{i}"] for i in range(len(tr))]
            nt = [arrays[f"nt{i}"] for i in range(len(nt))]
            acc = [arrays[f"acc{i}"] for i in range(len(acc))]
        return {"tr": self._replicate(tr), "nt": self._replicate(nt), "acc": self._replicate(acc)}

    @staticmethod
    def host(values: list[Any]) -> list[np.ndarray]:
        """Copies on the host: a view of a device buffer would change under the next
        step, which donates (reuses) the state's buffers."""
        return [np.array(v.addressable_data(0), copy=True) for v in values]

    def state_arrays(self, state: dict[str, list[Any]]) -> dict[str, np.ndarray]:
        """The state as named host arrays for a checkpoint (``tr<i>``, ``nt<i>``, ``acc<i>``)."""
        out = {}
        for key in ("tr", "nt", "acc"):
            out.update({f"{key}{i}": a for i, a in enumerate(self.host(state[key]))})
        return out

    # the step

    def _twin(self, users: int, movies: int) -> keras.Model:
        """The network with ``users`` user rows and ``movies`` movie rows: what one
        device batch touches (one twin per compact size, built once)."""
        if (users, movies) not in self._twins:
            config = {**self.network.get_config(), "num_users": users, "num_movies": movies}
            config.pop("name", None)
            twin = type(self.network).from_config(config)
            twin.build_weights()
            for big, small in zip(self.network.weights, twin.weights, strict=True):
                if big.shape[1:] != small.shape[1:]:
                    raise ModelError("the twin network does not mirror the network's weights")
            self._twins[users, movies] = twin
        return self._twins[users, movies]

    def _build_step(self, groups: int, pairs_per_step: int) -> Callable:
        import jax
        import jax.numpy as jnp
        from jax.sharding import PartitionSpec as P

        row_tables = self.row_tables if self.sparse else []
        row_tr = {i for _, trainable, _ in row_tables for i in trainable}
        row_nt = {i for _, _, fixed in row_tables for i in fixed}
        lr, clip = self.learning_rate, self.clipnorm
        devices = len(self.devices)

        def device_step(state, batch):
            batch = {k: v[0] for k, v in batch.items()}
            tr, nt, acc = state["tr"], state["nt"], state["acc"]
            inputs = {k: batch[k] for k in ("user", "history", "history_rating", "slot", "movie")}
            tr_in, nt_in = list(tr), list(nt)
            network = self.network
            if row_tables:  # traced once per compact movie size
                network = self._twin(groups + 1, batch["movie_rows"].shape[0])
                for key, trainable, fixed in row_tables:
                    for i in trainable:
                        tr_in[i] = jnp.take(tr[i], batch[key], axis=0)
                    for i in fixed:
                        nt_in[i] = jnp.take(nt[i], batch[key], axis=0)

            def loss_fn(weights):
                out, nt_out, losses = network.stateless_call(
                    weights, nt_in, inputs, training=True, return_losses=True
                )
                squared = batch["weight"] * jnp.square(out - batch["target"])
                data = jnp.sum(squared) / pairs_per_step
                extra = sum(losses) / devices if losses else 0.0
                return data + extra, (nt_out, jnp.sum(squared), jnp.sum(batch["weight"]))

            grads, (nt_out, sq, w) = jax.grad(loss_fn, has_aux=True)(tr_in)
            dense = {i: jax.lax.psum(g, "device") for i, g in enumerate(grads) if i not in row_tr}
            # Row gradients: (the rows, each row's gradient summed over devices). Rows
            # repeat only as padding with row 0, whose repeats carry zero gradients.
            rows_grads = {}
            for key, trainable, _ in row_tables:
                rows = batch[key]
                if devices == 1:
                    rows_grads.update({i: (rows, grads[i]) for i in trainable})
                    continue
                all_rows = jax.lax.all_gather(rows, "device", tiled=True)
                unique, inverse = jnp.unique(
                    all_rows, size=all_rows.shape[0], fill_value=0, return_inverse=True
                )
                for i in trainable:
                    g = jax.lax.all_gather(grads[i], "device", tiled=True)
                    summed = jax.ops.segment_sum(
                        g, inverse.reshape(-1), num_segments=all_rows.shape[0]
                    )
                    rows_grads[i] = (unique, summed)
            scale: Any = 1.0  # a traced array once clipped
            if clip is not None:
                norm = jnp.sqrt(
                    sum(jnp.sum(jnp.square(g)) for g in dense.values())
                    + sum(jnp.sum(jnp.square(g)) for _, g in rows_grads.values())
                )
                scale = clip / jnp.maximum(norm, clip)
            new_tr, new_acc = list(tr), list(acc)
            for i, g in dense.items():
                g = g * scale
                a = acc[i] + jnp.square(g)
                new_acc[i] = a
                new_tr[i] = tr[i] - lr * g / jnp.sqrt(a + EPSILON)
            for i, (rows, g) in rows_grads.items():
                # Scatter first, then read back the rows: reading the old accumulator
                # beside an in-place scatter makes XLA copy the whole table.
                g = g * scale
                new_acc[i] = acc[i].at[rows].add(jnp.square(g))
                a = jnp.take(new_acc[i], rows, axis=0)
                new_tr[i] = tr[i].at[rows].add(-lr * g / jnp.sqrt(a + EPSILON))
            new_nt = [v if i in row_nt else nt_out[i] for i, v in enumerate(nt)]
            sums = jax.lax.psum(jnp.stack([sq, w]), "device")
            return {"tr": new_tr, "nt": new_nt, "acc": new_acc}, sums

        mapped = jax.shard_map(
            device_step,
            mesh=self.mesh,
            in_specs=(P(), P("device")),
            out_specs=(P(), P()),
            check_vma=False,
        )
        return jax.jit(mapped, donate_argnums=(0,))

    def _global_batch(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        import jax

        sharding = jax.sharding.NamedSharding(self.mesh, jax.sharding.PartitionSpec("device"))
        return {
            k: jax.make_array_from_process_local_data(
                sharding, v, (len(self.devices), *v.shape[1:])
            )
            for k, v in batch.items()
        }

    # evaluation on this process's first device (every process gets the same figure)

    def evaluate(self, state: dict[str, list[Any]], feeds: Feeds, size: int) -> tuple[float, float]:
        """(squared-error sum, weight sum) over the validation ratings."""
        import jax

        if self._forward is None:
            network = self.network

            def forward(tr, nt, inputs):
                out, _ = network.stateless_call(tr, nt, inputs, training=False)
                return out

            self._forward = jax.jit(forward)
        tr = [v.addressable_data(0) for v in state["tr"]]
        nt = [v.addressable_data(0) for v in state["nt"]]
        sq = w = 0.0
        assert feeds.validation is not None and feeds.validation_builder is not None
        seed = int(self.settings["seed"])
        for batch in evaluation_batches(feeds.validation(), feeds.validation_builder, size, seed):
            inputs = {k: batch[k] for k in ("user", "history", "history_rating", "slot", "movie")}
            out = np.asarray(self._forward(tr, nt, inputs))
            sq += float(np.sum(batch["weight"] * (out - batch["target"]) ** 2, dtype=np.float64))
            w += float(np.sum(batch["weight"], dtype=np.float64))
        return sq, w

    def _common_shape(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``batch`` with as many compact movie rows as the largest process's batch:
        a step's global arrays need one shape everywhere."""
        if not self.several or "movie_rows" not in batch:
            return batch
        from jax.experimental import multihost_utils

        sizes = multihost_utils.process_allgather(np.int32(batch["movie_rows"].shape[-1]))
        return pad_movie_rows(batch, int(np.max(sizes)))

    def _agree(self, values: np.ndarray) -> np.ndarray:
        """Process 0's values on every process, so all take the same decisions."""
        if not self.several:
            return values
        from jax.experimental import multihost_utils

        return np.asarray(multihost_utils.broadcast_one_to_all(values))

    # the loop

    def fit(
        self,
        feeds: Feeds,
        *,
        epochs: int,
        patience: int,
        checkpoints: Checkpoints | None,
        member: int,
        resume: tuple[Resume, dict[str, np.ndarray]] | None,
        label: str = "ranking",
    ) -> dict[str, list[float]]:
        """Train the network on ``feeds``, checkpointing as ``options`` say.

        On return the network holds the weights with the best validation RMSE (the
        last ones without validation).

        Args:
            feeds: The batch plan, builders and validation batches.
            epochs: Most epochs to train (``steps_per_epoch`` may shorten each).
            patience: Epochs without a better validation RMSE before stopping.
            checkpoints: Where to save state; ``None`` saves nothing.
            member: Which ensemble member this is (names its checkpoint).
            resume: A checkpoint's position and state to continue from, or ``None``.
            label: What progress lines call the model (and which member of several),
                e.g. ``ranking 'dcn' member 2/3``.

        Returns:
            Per-epoch history: ``loss``, ``rmse``, ``ratings``, ``seconds`` and, with
            validation, ``val_rmse``.

        Raises:
            ProcessLost: Several processes train and a step or validation failed.
        """
        plan = feeds.plan
        position, arrays = resume if resume is not None else (Resume(), None)
        state = self.initial_state(arrays)
        best_weights: list[np.ndarray] | None = None
        if arrays is not None and "best0" in arrays:
            best_weights = [arrays[f"best{i}"] for i in range(len(state["tr"]) + len(state["nt"]))]
        groups = plan.size
        pairs = groups * plan.k * len(self.devices)
        if self._step is None:
            self._step = self._build_step(groups, pairs)
        every = int(self.options.checkpoint_steps or 0)
        limit = int(self.settings.get("steps_per_epoch") or 0)
        show = self.options.progress and self.process == 0
        total_ratings = plan.ratings if hasattr(plan, "ratings") else 0
        started = time.perf_counter()
        done_ratings, timed = 0.0, False

        def save(stop_epoch: int, stop_step: int, sums: np.ndarray) -> None:
            """Checkpoint the run as stopped at ``stop_step`` of ``stop_epoch``."""
            if checkpoints is None:
                return
            position.epoch, position.step = stop_epoch, stop_step
            position.sums = [float(x) for x in sums]
            extra = {}
            if best_weights is not None:
                extra = {f"best{i}": w for i, w in enumerate(best_weights)}
            checkpoints.save_state(member, position, {**self.state_arrays(state), **extra})

        epoch = position.epoch
        while not position.done and epoch < epochs:
            steps = all_steps = plan.steps(epoch)
            if limit:
                steps = min(steps, limit)
            first = position.step if epoch == position.epoch else 0
            sums = np.array(position.sums if first else [0.0, 0.0], np.float64)
            expected = total_ratings * steps // max(all_steps, 1)
            bar = Progress(label, epoch, epochs, expected, sums[1]) if show else None
            epoch_start = time.perf_counter()
            for step in range(first, steps):
                batch = step_batches(plan, feeds.builder, epoch, step, int(self.settings["seed"]))
                try:
                    batch = self._common_shape(batch)
                    state, out = self._step(state, self._global_batch(batch))
                    sq, w = (float(x) for x in np.asarray(out.addressable_data(0)))
                except Exception as error:
                    if self.several:
                        raise lost_process(error) from None
                    raise
                sums += (sq, w)
                if timed:
                    done_ratings += w
                else:  # the rate counts from the end of the first step (which compiles)
                    timed, started = True, time.perf_counter()
                if bar is not None:
                    bar.update(w, sums, done_ratings / max(time.perf_counter() - started, 1e-9))
                if every and (step + 1) % every == 0 and step + 1 < steps:
                    save(epoch, step + 1, sums)
            if bar is not None:
                bar.close()
            logs = {
                "loss": float(sums[0] / max(sums[1], 1.0)),
                "rmse": float(np.sqrt(sums[0] / max(sums[1], 1.0))),
                "ratings": float(sums[1]),
                "seconds": round(time.perf_counter() - epoch_start, 3),
            }
            stop = False
            if feeds.validation is not None:
                try:
                    vsq, vw = self._agree(
                        np.array(self.evaluate(state, feeds, groups * len(self.devices)))
                    )
                except Exception as error:
                    if self.several:
                        raise lost_process(error) from None
                    raise
                logs["val_rmse"] = float(np.sqrt(vsq / max(vw, 1.0)))
                if position.best is None or logs["val_rmse"] < position.best:
                    position.best, position.wait = logs["val_rmse"], 0
                    best_weights = self.host(state["tr"]) + self.host(state["nt"])
                else:
                    position.wait += 1
                    stop = position.wait >= patience
            for key, value in logs.items():
                position.history.setdefault(key, []).append(value)
            if show:
                logger.info(_epoch_line(label, epoch, epochs, logs))
            epoch += 1
            position.done = stop
            save(epoch, 0, np.zeros(2))
        weights = best_weights or (self.host(state["tr"]) + self.host(state["nt"]))
        variables = self.network.trainable_variables + self.network.non_trainable_variables
        for variable, weight in zip(variables, weights, strict=True):
            variable.assign(weight)
        return position.history


class Progress:
    """Ratings trained, ratings per second and ETAs of one epoch: a live bar on a
    terminal, else a plain log line every ``every`` seconds (long streamed epochs)."""

    def __init__(
        self, label: str, epoch: int, epochs: int, total: int, done: float, every: float = 30.0
    ):
        self.label, self.epoch, self.epochs, self.total = label, epoch, epochs, total
        self.every, self.last = every, time.perf_counter()
        self.bar = None
        if sys.stderr.isatty():
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=total,
                initial=done,
                desc=f"{label}: epoch {epoch + 1}/{epochs}",
                unit=" ratings",
                unit_scale=True,
                leave=False,
                mininterval=1.0,
            )

    def update(self, ratings: float, sums: np.ndarray, rate: float) -> None:
        """``rate``: ratings per second since the run (or resume) began."""
        left = max(self.total - sums[1], 0.0)
        run_left = left + (self.epochs - self.epoch - 1) * self.total
        rmse = float(np.sqrt(sums[0] / max(sums[1], 1.0)))
        run_eta = f"run ETA {clock(run_left / rate)} at most" if rate > 0 else ""
        if self.bar is not None:
            self.bar.update(ratings)
            self.bar.set_postfix_str(f"rmse {rmse:.4f}, {run_eta}", refresh=False)
            return
        now = time.perf_counter()
        if now - self.last >= self.every and rate > 0:
            self.last = now
            logger.info(
                "%s: epoch %d/%d, %.0f%% (%s of %s ratings), %s ratings/s, epoch ETA %s, %s",
                self.label, self.epoch + 1, self.epochs, 100 * sums[1] / max(self.total, 1),
                f"{sums[1]:,.0f}", f"{self.total:,}", f"{rate:,.0f}", clock(left / rate), run_eta,
            )  # fmt: skip

    def close(self) -> None:
        """Remove the live bar (the epoch's summary line follows)."""
        if self.bar is not None:
            self.bar.close()


def _epoch_line(label: str, epoch: int, epochs: int, logs: dict[str, float]) -> str:
    """The epoch's :func:`~movierec.progress.epoch_line`: RMSE in stars over the epoch's
    training ratings (and the validation slice's), time and ratings per second."""
    values = [("rmse", logs["rmse"], "stars")]
    if "val_rmse" in logs:
        values.append(("val_rmse", logs["val_rmse"], "stars"))
    rate = logs["ratings"] / max(logs["seconds"], 1e-9)
    return epoch_line(label, epoch, epochs, values, logs["seconds"], f"{rate:,.0f} ratings/s")
