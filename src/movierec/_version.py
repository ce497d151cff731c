"""The package version, in a module of its own so that any layer can read it.

``movierec.__version__`` re-exports it, and pyproject.toml reads it at build time.
"""

__version__ = "0.1.0"
