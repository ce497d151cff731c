"""movierec: a two-stage movie recommender on Keras 3 and keras-rs.

Keras picks its backend when first imported; movierec defaults it to JAX
(the examples' choice, and no TensorFlow needed). Set KERAS_BACKEND to override.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

__version__ = "0.1.0"
