"""Optional dependencies: what a command needs beyond the core install, and how to get it.

The core install trains, evaluates and recommends. ``movierec[serve]`` adds the HTTP
service (FastAPI, uvicorn, SQLAlchemy); ``movierec[ann]`` adds faiss for approximate
indexes. A feature whose extra is missing says which ``pip install`` line to run.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from movierec.errors import MovierecError

#: Module -> (extra, pip distribution name).
EXTRAS: dict[str, tuple[str, str]] = {
    "fastapi": ("serve", "fastapi"),
    "fastapi_offline": ("serve", "fastapi-offline"),
    "uvicorn": ("serve", "uvicorn"),
    "sqlalchemy": ("serve", "sqlalchemy"),
    "faiss": ("ann", "faiss-cpu"),
}


class MissingExtraError(MovierecError):
    """A feature needs a package from an optional extra that is not installed."""


def require(module: str, purpose: str) -> ModuleType:
    """``module`` imported, or a :class:`MissingExtraError` naming the install line."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        extra, distribution = EXTRAS[module]
        raise MissingExtraError(
            f"{purpose} needs {distribution}, which is not installed: "
            f"pip install 'movierec[{extra}]'"
        ) from error


def require_serving(purpose: str = "movierec serve") -> None:
    """Every package of the ``serve`` extra, checked up front."""
    for module, (extra, _) in EXTRAS.items():
        if extra == "serve":
            require(module, purpose)
