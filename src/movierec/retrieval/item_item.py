"""The two-tower's item-item path: EASE on a session-weighted Gram matrix, kept low-rank.

EASE (Steck, WWW 2019) regresses each movie on all the others in closed form:
``B = I - P diagMat(1 / diag(P))`` with ``P = (G + lambda I)^-1`` and ``G`` the item-item
Gram matrix. It is a strong retriever, but ``B`` is n x n: 40 GB at 100K movies, and the
inverse costs n^3. Here ``G`` is replaced by its top ``rank`` eigenpairs ``V diag(s) V^T``
(a randomized eigensolver that only multiplies ``G`` with thin blocks, so ``G`` itself is
never formed), which gives ``P`` in closed form as well:
``P = V diag(1/(s+lambda)) V^T + (I - V V^T) / lambda``. For a user's history row ``x`` the
EASE score of a movie ``j`` they have not rated is then a dot product of two rank-sized
vectors:

    score_j = (x V diag(s / (lambda (s + lambda)))) . (V_j / diag(P)_j)

so the path is two n x rank tables: the query sums the *query table* rows of the movies in
the history (an id list, not a catalogue-wide row), the candidate is its row of the
*candidate table*. Where ``rank >= n`` the eigendecomposition is exact and so is EASE;
beyond that the discarded eigenvalues are those small next to ``lambda``, whose
contribution ``s / (lambda (s + lambda))`` is small anyway (the quality benchmark
measures the difference). This is the spectral view of the low-rank EASE variants
(ELSA, Vančura et al. RecSys 2022) without a training loop.

The Gram matrix weights each co-rating by how close in time the two ratings were:
``far + (1 - far) * exp(-|t_i - t_j| / window)``. Movies rated in one sitting were found,
watched or remembered together, so their pairing says more than two ratings months
apart; the kernel is positive semi-definite, so ``G`` stays a Gram matrix. ``far = 1``
(or ``window = 0``) counts every pair fully: plain EASE.

``lambda`` is chosen by the data: the path is fitted on 90% of the training ratings for
each ``lambda`` of a grid, scored on the other 10%, and the best one (scaled up by the
ratio of the Gram matrices' sizes) is refitted on everything.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from movierec.data.histories import Histories, positions_in_runs
from movierec.data.training import TrainingSet
from movierec.metrics import relevant_sets, sample_users, top_k_metrics
from movierec.retrieval.topk import top_k

_NEAR_WINDOWS = 20.0  # pairs further apart than this many windows get the far weight only
_PAIRS_PER_BATCH = 1 << 23  # near pairs summed at a time (~200 MB of indices and weights)
#: Candidate ``lambda`` values tried on the validation ratings (relative grid, see fit).
LAMBDA_GRID = tuple(10.0 * 2.0**k for k in range(15))  # 10 ... 163,840
_VALIDATION_USERS = 3000  # users scored per lambda while choosing it
_USERS_PER_PRODUCT = 1 << 16  # users whose rows multiply a block at a time
#: Near pairs beyond which the streamed fit leaves session weighting out (see fit_item_item_runs).
MAX_NEAR_PAIRS = 1 << 25


def interaction_matrix(train: TrainingSet) -> sparse.csr_matrix:
    """Binary users x movies matrix (rows/columns are vocabulary indices)."""
    ones = np.ones(len(train), dtype=np.float32)
    matrix = sparse.csr_matrix(
        (ones, (train.user_index, train.movie_index)),
        shape=(train.users.size, train.movies.size),
    )
    matrix.data[:] = 1.0  # duplicates collapse to one interaction
    return matrix


def ease_weights(gram: np.ndarray, l2: float) -> np.ndarray:
    """EASE's exact closed form from an item-item Gram matrix: B = I - P diagMat(1 / diag(P))
    with P = (G + l2 I)^-1, i.e. the best ridge regression of each item on the others."""
    regularised = np.array(gram, dtype=np.float64)  # a copy: the caller's matrix stays as is
    regularised[np.diag_indices_from(regularised)] += l2
    inverse = np.linalg.inv(regularised)
    weights = -inverse / np.diag(inverse)
    weights[np.diag_indices_from(weights)] = 0.0
    return weights


@dataclass
class SessionGram:
    """``G = far * X^T X + (1 - far) * near``, kept as its two sparse factors.

    Attributes:
        interactions: binary users x movies matrix ``X``.
        near: sparse movies x movies sum of the time kernel over pairs rated close in time
            (None when ``far`` is 1: plain co-rating counts).
        far_weight: the weight of a co-rating whose two ratings are far apart.
    """

    interactions: sparse.csr_matrix
    near: sparse.csr_matrix | None
    far_weight: float

    @property
    def size(self) -> int:
        """``n``: the number of movies (rows and columns of ``G``)."""
        return self.interactions.shape[1]

    def __matmul__(self, block: np.ndarray) -> np.ndarray:
        """``G @ block`` for an (n, k) block, without forming ``G``."""
        x = self.interactions
        # Users a slice at a time: ``x @ block`` whole would be users x k floats.
        product = np.zeros((x.shape[1], block.shape[1]), np.result_type(block, np.float32))
        for start in range(0, x.shape[0], _USERS_PER_PRODUCT):
            part = x[start : start + _USERS_PER_PRODUCT]
            product += np.asarray(part.T @ (part @ block))
        product *= self.far_weight
        if self.near is not None:
            product += (1.0 - self.far_weight) * np.asarray(self.near @ block)
        return product

    def dense(self) -> np.ndarray:
        """``G`` as a dense float64 array (small catalogues and tests)."""
        x = self.interactions
        gram = self.far_weight * (x.T @ x).toarray().astype(np.float64)
        if self.near is not None:
            gram += (1.0 - self.far_weight) * self.near.toarray()
        return gram


def session_gram(train: TrainingSet, window_seconds: float, far_weight: float) -> SessionGram:
    """The co-rating Gram matrix with each pair weighted by how close in time it was:
    1 at no gap, falling to ``far_weight`` for pairs many windows apart.

    The kernel is only evaluated for pairs within ``_NEAR_WINDOWS`` windows of each other
    (beyond that it is below 1e-8), so the cost follows how many ratings users make in
    one sitting, not the square of their history lengths."""
    matrix = interaction_matrix(train)
    if window_seconds <= 0 or far_weight >= 1:
        return SessionGram(matrix, None, 1.0)
    users = np.asarray(train.user_index)
    stamps = train.ratings["timestamp"].to_numpy(np.float64)
    order = np.lexsort((stamps, users))  # by user, then by time
    movies = np.asarray(train.movie_index)[order]
    # train.by_user.offsets: where each user's run starts in that order.
    near = near_matrix(movies, stamps[order], train.by_user.offsets, train.movies.size,
                       window_seconds)
    return SessionGram(matrix, near, far_weight)


def near_matrix(
    movies: np.ndarray, times: np.ndarray, bounds: np.ndarray, n: int, window_seconds: float
) -> sparse.csr_matrix:
    """Sparse n x n sum of ``exp(-gap / window)`` over each user's pairs of ratings
    within ``_NEAR_WINDOWS`` windows; ``movies`` and ``times`` hold every user's run,
    each sorted by time, user ``u``'s at ``bounds[u]:bounds[u + 1]``.

    Args:
        movies: Movie index of every rating, user run after user run.
        times: Timestamp (seconds) of every rating, in the same order.
        bounds: ``num_users + 1`` offsets of the runs into ``movies`` and ``times``.
        n: Number of movies (the matrix's side).
        window_seconds: The kernel's time scale; must be positive.

    Returns:
        The symmetric CSR matrix; each rating paired with itself adds 1 to the diagonal.
    """
    movies = np.asarray(movies).astype(np.int64)
    times = np.asarray(times, np.float64)
    count = len(movies)
    reach = _reach(times, bounds, window_seconds)
    near = sparse.csr_matrix((n, n), dtype=np.float64)
    for rows in _batches(reach - np.arange(count)):
        lengths = reach[rows] - rows
        first = np.repeat(rows, lengths)
        second = first + positions_in_runs(lengths)
        kernel = np.exp(-(times[second] - times[first]) / window_seconds)
        # Each pair once (earlier first, the rating with itself included): add both ways,
        # then the diagonal's double count comes off.
        a, b = movies[first], movies[second]
        near += sparse.csr_matrix((kernel, (a, b)), shape=(n, n))
        near += sparse.csr_matrix((kernel[a != b], (b[a != b], a[a != b])), shape=(n, n))
    return near.tocsr()


def _reach(times: np.ndarray, bounds: np.ndarray, window_seconds: float) -> np.ndarray:
    """For rating i, the same user's ratings within reach are i .. reach[i] - 1
    (``times`` sorted within each user's run ``bounds[u]:bounds[u + 1]``)."""
    times = np.asarray(times, np.float64)
    reach = np.empty(len(times), np.int64)
    for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
        t = times[start:stop]
        reach[start:stop] = start + np.searchsorted(t, t + _NEAR_WINDOWS * window_seconds, "right")
    return reach


def _batches(pair_counts: np.ndarray) -> list[np.ndarray]:
    """Consecutive runs of ratings whose pairs add up to about ``_PAIRS_PER_BATCH`` each."""
    if len(pair_counts) == 0:
        return []
    total = np.cumsum(pair_counts)
    cuts = np.searchsorted(total, np.arange(_PAIRS_PER_BATCH, total[-1], _PAIRS_PER_BATCH))
    edges = np.unique(np.concatenate([[0], cuts, [len(pair_counts)]]))
    return [np.arange(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True)]


def top_eigenpairs(
    gram: SessionGram, rank: int, seed: int, power_iterations: int = 3, oversample: int = 32
) -> tuple[np.ndarray, np.ndarray]:
    """The ``rank`` largest eigenvalues (descending) and eigenvectors (columns) of ``gram``.

    Exact (a dense symmetric eigensolver) when ``rank`` covers the catalogue; otherwise
    Halko et al.'s randomized range finder with power iterations, which needs only
    products of ``gram`` with thin (n, rank + oversample) blocks.

    Args:
        gram: The Gram matrix, kept as its sparse factors.
        rank: How many eigenpairs to return.
        seed: Seeds the random starting block.
        power_iterations: Power iterations of the range finder (more: more accurate
            on a slowly decaying spectrum, one more product with ``gram`` each).
        oversample: Extra columns of the random block beyond ``rank``.

    Returns:
        ``(values, vectors)``: ``(rank,)`` eigenvalues, negative ones set to 0, and
        ``(n, rank)`` orthonormal eigenvectors.
    """
    n = gram.size
    if rank + oversample >= n:
        values, vectors = np.linalg.eigh(gram.dense())
        order = np.argsort(values)[::-1][:rank]
        return np.maximum(values[order], 0.0), vectors[:, order]
    rng = np.random.default_rng(seed)
    basis = orthonormal(gram @ rng.standard_normal((n, rank + oversample)))
    for _ in range(power_iterations):
        basis = orthonormal(gram @ basis)
    small = basis.T @ (gram @ basis)
    values, rotation = np.linalg.eigh((small + small.T) / 2)
    order = np.argsort(values)[::-1][:rank]
    return np.maximum(values[order], 0.0), basis @ rotation[:, order]


def orthonormal(block: np.ndarray) -> np.ndarray:
    """An orthonormal basis of ``block``'s columns (n x k, n >> k), by Cholesky QR twice.

    Why not Householder QR: on a tall block it is memory-bound and several times slower
    than the two k x k Gram products and triangular solves used here, and with 100K
    movies it would dominate the fit. The second pass restores the orthogonality the
    first loses on ill-conditioned blocks; a block too ill-conditioned for Cholesky
    falls back to Householder QR.
    """
    from scipy.linalg import LinAlgError, cholesky, qr, solve_triangular

    try:
        for _ in range(2):
            upper = cholesky(block.T @ block, lower=False)
            block = solve_triangular(upper, block.T, trans="T", lower=False).T
        return np.ascontiguousarray(block)
    except LinAlgError:
        return qr(block, mode="economic")[0]


@dataclass
class LowRankEASE:
    """EASE from a Gram matrix's top eigenpairs; :meth:`tables` gives the two towers' parts.

    Attributes:
        values: (rank,) eigenvalues, descending.
        vectors: (n, rank) orthonormal eigenvectors.
    """

    values: np.ndarray
    vectors: np.ndarray

    def tables(self, l2: float) -> tuple[np.ndarray, np.ndarray]:
        """(query table, candidate table), each (n, rank) float32: a history's query is the
        sum of its movies' query rows, and its dot product with a candidate row is that
        movie's EASE score (for movies outside the history)."""
        v, s = self.vectors, self.values
        norms = np.einsum("ij,ij->i", v, v)
        diagonal = (v * v) @ (1.0 / (s + l2)) + np.clip(1.0 - norms, 0.0, None) / l2
        query = v * (s / (l2 * (s + l2)))
        candidate = v / diagonal[:, None]
        return query.astype(np.float32), candidate.astype(np.float32)

    def scorer(
        self, interactions: sparse.csr_matrix, l2: float
    ) -> Callable[[np.ndarray], np.ndarray]:
        """A ``score_fn`` (user indices -> users x movies scores) for evaluation."""
        query, candidate = self.tables(l2)

        def score(user_index: np.ndarray) -> np.ndarray:
            """EASE scores of the users' training histories over every movie."""
            return np.asarray(interactions[user_index] @ query) @ candidate.T

        return score


@dataclass
class ItemItemFit:
    """What :func:`fit_item_item` found: the tables and the ``lambda`` it chose."""

    query_table: np.ndarray
    candidate_table: np.ndarray
    l2: float
    validation_ndcg: dict[float, float]
    session_weighted: bool = True


def _best_lambda(scores: dict[float, float]) -> float:
    """The candidate lambda with the best score (the larger one on a tie)."""
    return max(scores, key=lambda candidate: (scores[candidate], candidate))


def choose_l2(
    train: TrainingSet,
    *,
    rank: int,
    window_seconds: float,
    far_weight: float,
    seed: int,
    validation_fraction: float = 0.1,
) -> tuple[float, dict[float, float]]:
    """EASE's ``lambda`` for ``train``, chosen on a seeded share of its own ratings.

    A seeded ``validation_fraction`` of the training ratings is held out, the path is
    fitted to the rest once (the eigenpairs do not depend on ``lambda``), every
    ``lambda`` in :data:`LAMBDA_GRID` is scored by NDCG@10 on the held-out ratings of up
    to 3,000 users, and the best is scaled by ``1 / (1 - validation_fraction)`` (the Gram
    matrix of all ratings is that much larger).

    Args:
        train: The training set; ``lambda`` is chosen for a fit on all of it.
        rank: Eigenpairs kept (see :func:`top_eigenpairs`).
        window_seconds: Time scale of the session kernel (0: plain EASE).
        far_weight: Weight of a co-rating far apart in time (1: plain EASE).
        seed: Seeds the hold-out, the eigensolver and the users scored.
        validation_fraction: Share of the ratings held out.

    Returns:
        The chosen ``lambda`` and the validation NDCG@10 of every grid value.
    """
    rng, part, held_users, held_movies = _hold_out(train, seed, validation_fraction)
    spectrum = LowRankEASE(
        *top_eigenpairs(session_gram(part, window_seconds, far_weight), rank, seed)
    )
    return _best_l2(
        spectrum,
        interaction_matrix(part),
        held_users,
        held_movies,
        _VALIDATION_USERS,
        rng,
        validation_fraction,
    )


def _hold_out(
    train: TrainingSet, seed: int, validation_fraction: float
) -> tuple[np.random.Generator, TrainingSet, np.ndarray, np.ndarray]:
    """A seeded ``validation_fraction`` of ``train``'s ratings held out: the generator
    (drawn from once, for the next draws), the rest as a training set with ``train``'s
    vocabularies, and the held-out ratings' user and movie indices."""
    rng = np.random.default_rng(seed)
    held = rng.random(len(train)) < validation_fraction
    part = TrainingSet.build(
        train.dataset, train.ratings[~held], users=train.users, movies=train.movies
    )
    return rng, part, np.asarray(train.user_index)[held], np.asarray(train.movie_index)[held]


def _held_relevance(
    held_users: np.ndarray, held_movies: np.ndarray, max_users: int, rng: np.random.Generator
) -> tuple[np.ndarray, list[set[int]]]:
    """Up to ``max_users`` users drawn by ``rng`` and each one's held-out movies (index 0,
    an unknown movie, is never relevant; a user with none is left out)."""
    kept = np.isin(held_users, sample_users(np.unique(held_users), max_users, rng))
    kept &= held_movies > 0
    return relevant_sets(held_users[kept], held_movies[kept])


def _best_l2(
    spectrum: LowRankEASE,
    seen: sparse.csr_matrix,
    held_users: np.ndarray,
    held_movies: np.ndarray,
    max_users: int,
    rng: np.random.Generator,
    validation_fraction: float,
) -> tuple[float, dict[float, float]]:
    """Score every ``lambda`` of :data:`LAMBDA_GRID` by NDCG@10 of the held-out ratings
    (``held_users``/``held_movies``, up to ``max_users`` users drawn by ``rng``), with the
    path fitted to the rest (``spectrum``; ``seen``: users x movies of the rest, whose
    movies are excluded from each list); the best is scaled by
    ``1 / (1 - validation_fraction)`` for the Gram matrix of every rating."""

    users, relevant = _held_relevance(held_users, held_movies, max_users, rng)
    rows = seen[users]
    scores: dict[float, float] = {}
    for candidate in LAMBDA_GRID:
        query, table = spectrum.tables(candidate)
        ranked = []
        for start in range(0, len(users), 500):
            block = rows[start : start + 500]
            scored = np.asarray(block @ query) @ table.T
            exclude = [block.indices[block.indptr[i] : block.indptr[i + 1]]
                       for i in range(block.shape[0])]
            ranked.append(top_k(scored, 10, exclude)[1])
        ndcg = top_k_metrics(np.concatenate(ranked) if ranked else [], relevant, 10)["ndcg"]
        scores[candidate] = 0.0 if np.isnan(ndcg) else float(ndcg)
    best = max(scores, key=lambda k: (scores[k], k))
    return best / (1.0 - validation_fraction), scores


def fit_item_item(
    train: TrainingSet,
    *,
    rank: int,
    window_seconds: float,
    far_weight: float,
    seed: int,
    l2: float | None = None,
) -> ItemItemFit:
    """Fit the low-rank session-weighted EASE path, choosing ``lambda`` by
    :func:`choose_l2` when ``l2`` is None.

    Args:
        train: The training set (its ratings' timestamps weight the pairs).
        rank: Eigenpairs kept (see :func:`top_eigenpairs`).
        window_seconds: Time scale of the session kernel (0: plain EASE).
        far_weight: Weight of a co-rating far apart in time (1: plain EASE).
        seed: Seeds the eigensolver and, when choosing ``lambda``, the hold-out.
        l2: EASE's ``lambda``; ``None`` chooses it on held-out ratings.

    Returns:
        The :class:`ItemItemFit`; its ``validation_ndcg`` is empty when ``l2`` was given.
    """
    scores: dict[float, float] = {}
    if l2 is None:
        l2, scores = choose_l2(
            train, rank=rank, window_seconds=window_seconds, far_weight=far_weight, seed=seed
        )
    gram = session_gram(train, window_seconds, far_weight)
    spectrum = LowRankEASE(*top_eigenpairs(gram, rank, seed))
    query, candidate = spectrum.tables(float(l2))
    return ItemItemFit(query, candidate, float(l2), scores)


def fit_item_item_runs(
    histories: Histories,
    times: np.ndarray | None,
    num_movies: int,
    *,
    rank: int,
    window_seconds: float,
    far_weight: float,
    seed: int,
    l2: float | None = None,
    validation_fraction: float = 0.1,
    validation_users: int = 1000,
    max_near_pairs: int = MAX_NEAR_PAIRS,
) -> ItemItemFit:
    """:func:`fit_item_item` from per-user runs instead of a rating table (streamed training).

    ``histories`` holds every user's training movies, ``times`` their timestamps in the
    same order (None: plain EASE, no session weighting). ``lambda`` is chosen as
    :func:`fit_item_item` does: fitted on a seeded ``1 - validation_fraction`` of the
    ratings, scored by NDCG@10 on the rest (up to ``validation_users`` users: scoring one
    costs a pass over the catalogue per ``lambda``), scaled, refitted on all.

    Where users rated more than ``max_near_pairs`` pairs of movies close in time, the
    session weighting is left out (plain EASE, as ``far_weight = 1``): its sparse
    near-pair matrix would then hold more entries than the ratings themselves many
    times over, and multiplying by it would cost more than the rest of the fit.
    ``ItemItemFit.session_weighted`` says which was fitted.

    Args:
        histories: Every user's training movies, in runs by user index.
        times: Each of those ratings' timestamps, or ``None`` for plain EASE.
        num_movies: Size of the movie vocabulary.
        rank: Eigenpairs kept (see :func:`top_eigenpairs`).
        window_seconds: Time scale of the session kernel (0: plain EASE).
        far_weight: Weight of a co-rating far apart in time (1: plain EASE).
        seed: Seeds the hold-out, the eigensolver and the users scored.
        l2: EASE's ``lambda``; ``None`` chooses it on held-out ratings.
        validation_fraction: Share of the ratings held out to choose ``lambda``.
        validation_users: Most users scored per ``lambda``.
        max_near_pairs: Near pairs above which session weighting is left out.

    Returns:
        The :class:`ItemItemFit`; its ``validation_ndcg`` is empty when ``l2`` was given.
    """
    owner = np.repeat(
        np.arange(histories.num_users, dtype=np.int64), np.diff(histories.offsets)
    )
    if times is not None and (window_seconds <= 0 or far_weight >= 1):
        times = None
    if times is not None and near_pairs(histories, times, window_seconds) > max_near_pairs:
        times = None  # the session kernel would cost more than the rest of the fit
    scores: dict[float, float] = {}
    if l2 is None:
        rng = np.random.default_rng(seed)
        held = rng.random(len(owner)) < validation_fraction
        kept = ~held
        part = _runs_gram(
            owner[kept], histories.movies[kept], None if times is None else times[kept],
            histories.num_users, num_movies, window_seconds, far_weight,
        )
        spectrum = LowRankEASE(*top_eigenpairs(part, rank, seed))
        l2, scores = _best_l2(
            spectrum, part.interactions, owner[held], histories.movies[held],
            validation_users, rng, validation_fraction,
        )
        del part, spectrum
    gram = _runs_gram(
        owner, histories.movies, times, histories.num_users, num_movies, window_seconds,
        far_weight,
    )
    del owner
    spectrum = LowRankEASE(*top_eigenpairs(gram, rank, seed))
    query, candidate = spectrum.tables(float(l2))
    return ItemItemFit(query, candidate, float(l2), scores, session_weighted=times is not None)


def near_pairs(histories: Histories, times: np.ndarray, window_seconds: float) -> int:
    """How many pairs of one user's ratings (each rating with itself included) lie within
    the session kernel's reach: the entries :func:`near_matrix` would sum."""
    owner = np.repeat(np.arange(histories.num_users, dtype=np.int64), np.diff(histories.offsets))
    order = np.lexsort((times, owner))
    del owner
    reach = _reach(np.asarray(times)[order], histories.offsets, window_seconds)
    return int(np.sum(reach - np.arange(len(reach))))


def _runs_gram(
    owner: np.ndarray,
    movies: np.ndarray,
    times: np.ndarray | None,
    num_users: int,
    num_movies: int,
    window_seconds: float,
    far_weight: float,
) -> SessionGram:
    """The :class:`SessionGram` of ratings given as (owner, movie, time) grouped by owner."""
    offsets = np.zeros(num_users + 1, np.int64)
    np.cumsum(np.bincount(owner, minlength=num_users), out=offsets[1:])
    matrix = sparse.csr_matrix(
        (np.ones(len(movies), np.float32), np.array(movies, np.int32), offsets),
        shape=(num_users, num_movies),
    )  # a copy of movies: sum_duplicates sorts the indices in place
    matrix.sum_duplicates()
    matrix.data[:] = 1.0  # duplicates collapse to one interaction
    if times is None:
        return SessionGram(matrix, None, 1.0)
    order = np.lexsort((times, owner))  # by user (runs stay where they are), then by time
    near = near_matrix(movies[order], times[order], offsets, num_movies, window_seconds)
    return SessionGram(matrix, near, far_weight)


#: History lengths a short-history ``lambda`` is chosen for (a visitor's first ratings).
SHORT_LENGTHS = (1, 3, 5, 10)
#: How far below the middle of the scale a rating must be to count against: the lowest
#: star counts ``1 - DISLIKE`` (see :func:`star_weights`).
DISLIKE = 1.5


@dataclass
class ShortHistoryFit:
    """The short-history item-item path: a ridge projection on the co-rating spectrum.

    The score of movie ``j`` for a short history ``x`` is
    ``(x V) diag(s / (s + lambda_n)) V_j``, i.e. ``x G (G + lambda_n I)^-1`` on the plain
    (not session-weighted) Gram matrix: what EASE becomes for a large ``lambda``, where
    its diagonal constraint no longer matters, so the candidate side is the same for
    every ``lambda`` and ``lambda_n`` can follow the history's length ``n``.

    Attributes:
        vectors: (movies, rank) float32 eigenvectors: the query rows and the candidates.
        values: (rank,) float32 eigenvalues.
        lambdas: ``lambda`` for each length of :data:`SHORT_LENGTHS`, chosen on held-out
            ratings (or all the one given).
        validation_ndcg: NDCG@10 of every grid ``lambda`` at each length (empty when
            ``lambda`` was given).
    """

    vectors: np.ndarray
    values: np.ndarray
    lambdas: tuple[float, ...]
    validation_ndcg: dict[int, dict[float, float]]


def star_weights(stars: np.ndarray, scale: tuple[float, float]) -> np.ndarray:
    """How a rating counts in a short-history query: 1 from the middle of the ``scale``
    up, less below it, down to ``1 - DISLIKE`` (-0.5) at the lowest star: a low rating
    still says what the person watches, the lowest pushes movies like it down."""
    low, high = float(scale[0]), float(scale[1])
    middle = (low + high) / 2.0
    stars = np.asarray(stars, np.float32)
    below = 1.0 - DISLIKE * (middle - stars) / max(middle - low, 1e-6)
    return np.where(stars >= middle, 1.0, below).astype(np.float32)


def short_lambda(lambdas: tuple[float, ...], n: int) -> float:
    """The ``lambda`` for a history of ``n`` ratings: interpolated on a log scale
    between the lengths of :data:`SHORT_LENGTHS`, held flat beyond them."""
    return float(np.exp(np.interp(n, SHORT_LENGTHS, np.log(np.asarray(lambdas)))))


def fit_short_history(
    train: TrainingSet,
    *,
    rank: int,
    seed: int,
    l2: float | None = None,
    validation_fraction: float = 0.1,
) -> ShortHistoryFit:
    """The short-history path of ``train``: eigenpairs and a ``lambda`` per length.

    EASE's ``lambda`` chosen on known users' held-out ratings suits long histories; a
    person known by a few ratings is served better by a much larger one, which leans
    on what is co-rated *and* popular, and by co-ratings counted plainly rather than
    session-weighted. Each length's ``lambda`` is chosen by NDCG@10 on queries of that
    many random movies of each validation user's fitted ratings (the rest of them
    excluded from the list), relevant = their held-out ratings, with the hold-out,
    eigensolver seed and grid of :func:`choose_l2`.

    Args:
        train: The training set.
        rank: Eigenpairs kept (few suffice: a large ``lambda`` weighs eigenvalue ``s``
            by ``s / (s + lambda)``).
        seed: Seeds the hold-out, the eigensolver and the draws.
        l2: One ``lambda`` for every length; ``None`` chooses one per length.
        validation_fraction: Share of the ratings held out to choose them.

    Returns:
        The :class:`ShortHistoryFit`.
    """
    rank = min(rank, train.movies.size)
    scores: dict[int, dict[float, float]] = {}
    if l2 is None:
        rng, part, held_users, held_movies = _hold_out(train, seed, validation_fraction)
        values, vectors = top_eigenpairs(session_gram(part, 0.0, 1.0), rank, seed)
        users, relevant = _held_relevance(held_users, held_movies, _VALIDATION_USERS, rng)
        seen = interaction_matrix(part)[users]
        for length, rows, given in _short_queries(seen, rng):
            projected = given @ vectors
            exclude = [seen.indices[seen.indptr[i] : seen.indptr[i + 1]] for i in rows]
            wanted = [relevant[i] for i in rows]
            scores[length] = {}
            for candidate in LAMBDA_GRID:
                scored = (projected * (values / (values + candidate))) @ vectors.T
                ndcg = top_k_metrics(top_k(scored, 10, exclude)[1], wanted, 10)["ndcg"]
                scores[length][candidate] = 0.0 if np.isnan(ndcg) else float(ndcg)
        chosen = [
            _best_lambda(scores[n]) / (1.0 - validation_fraction)
            if n in scores else max(LAMBDA_GRID)
            for n in SHORT_LENGTHS
        ]
        lambdas = tuple(float(c) for c in chosen)
    else:
        lambdas = (float(l2),) * len(SHORT_LENGTHS)
    values, vectors = top_eigenpairs(session_gram(train, 0.0, 1.0), rank, seed)
    return ShortHistoryFit(
        vectors.astype(np.float32), values.astype(np.float32), lambdas, scores
    )


def _short_queries(
    seen: sparse.csr_matrix, rng: np.random.Generator
) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """For each length of :data:`SHORT_LENGTHS` that some row of ``seen`` exceeds: the
    length, those rows, and a (rows, movies) binary matrix of that many of their movies,
    drawn."""
    counts = np.diff(seen.indptr)
    draws = []
    for length in SHORT_LENGTHS:
        rows = np.flatnonzero(counts > length)
        if not len(rows):
            continue
        given = np.zeros((len(rows), seen.shape[1]), np.float32)
        for out, row in enumerate(rows):
            movies = seen.indices[seen.indptr[row] : seen.indptr[row + 1]]
            given[out, rng.choice(movies, length, replace=False)] = 1.0
        draws.append((length, rows, given))
    return draws
