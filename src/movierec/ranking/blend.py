"""How the ranking stage orders what retrieval found.

Retrieval scores are logits of "this user picks this movie"; the ranker's
stars say how much they would like it once picked. A movie worth recommending
is one the user is likely to pick *and* to rate highly, so the final score adds
the two: ``retrieval_score + weight * predicted_stars``. Ordering by stars alone
throws away what retrieval knows (obscure, highly rated movies float up), which
is why a pure star ordering scores below retrieval's own order.
"""

from __future__ import annotations

import numpy as np

DEFAULT_STAR_WEIGHT = 1.0


def blend_scores(
    retrieval_scores: np.ndarray, predicted_stars: np.ndarray, weight: float = DEFAULT_STAR_WEIGHT
) -> np.ndarray:
    """Final ordering scores for candidates (same shape as the inputs)."""
    return np.asarray(retrieval_scores, np.float32) + weight * np.asarray(
        predicted_stars, np.float32
    )
