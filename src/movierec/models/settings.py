"""Typed model settings: one dataclass per model, with bounds and a line of help per field.

A model names its dataclass in ``settings_class``; from it come the model's
``default_settings()``, the checks on ``movierec train --set KEY=VALUE`` and on
keyword arguments, the settings recorded in a model's manifest, and the table of
``movierec train --help-settings MODEL``. Declare a field with :func:`setting`::

    @dataclass(frozen=True)
    class MySettings(ModelSettings):
        epochs: int = setting(40, "passes over the training ratings", minimum=1)

Values are checked, never silently converted: an integer field takes an integer
(or a float with no fractional part, as JSON may write it), a float field any finite
number, a bool field ``true``/``false``, and a ``Literal`` field one of its values.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from movierec.errors import MovierecError


class SettingsError(MovierecError, ValueError):
    """A setting that does not exist or a value of the wrong type or range."""


def setting(
    default: Any,
    help: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    above: float | None = None,
    below: float | None = None,
) -> Any:
    """A settings field: its default, a one-line description and optional bounds.

    ``minimum``/``maximum`` are inclusive, ``above``/``below`` exclusive.

    Args:
        default: The value when none is given.
        help: One line for ``--help-settings``.
        minimum: Smallest allowed value, or ``None``.
        maximum: Largest allowed value, or ``None``.
        above: Values must be greater than this, or ``None``.
        below: Values must be less than this, or ``None``.

    Returns:
        A ``dataclasses.field`` carrying the description and bounds as metadata.
    """
    bounds = {"minimum": minimum, "maximum": maximum, "above": above, "below": below}
    return dataclasses.field(default=default, metadata={"help": help, **bounds})


def share(default: float, help: str) -> Any:
    """A settings field that is a share of something: in [0, 1)."""
    return setting(default, help, minimum=0.0, below=1.0)


@dataclass(frozen=True)
class SettingInfo:
    """What ``--help-settings`` shows for one field."""

    name: str
    type: Any
    default: Any
    help: str
    minimum: float | None = None
    maximum: float | None = None
    above: float | None = None
    below: float | None = None

    @property
    def type_name(self) -> str:
        """The field's type as ``--help-settings`` prints it."""
        return _type_name(self.type)

    @property
    def range(self) -> str:
        """The allowed range, e.g. ">= 0, < 1"; empty for choices or unbounded fields."""
        if typing.get_origin(self.type) is Literal:
            return ""
        low = _bound((">=", self.minimum), (">", self.above))
        high = _bound(("<=", self.maximum), ("<", self.below))
        return ", ".join(p for p in (low, high) if p)


def _bound(inclusive: tuple[str, float | None], strict: tuple[str, float | None]) -> str:
    """One side of a range, ">= 1" or "> 0" (the inclusive bound wins), or ""."""
    for op, value in (inclusive, strict):
        if value is not None:
            return f"{op} {_num(value)}"
    return ""


@dataclass(frozen=True)
class ModelSettings:
    """Base of every model's settings dataclass."""

    #: The model's name, for messages ("dcn: no setting 'x'").
    model_name: ClassVar[str] = "model"

    @classmethod
    def fields(cls) -> list[SettingInfo]:
        """Every setting's name, type, default, description and bounds, in order."""
        hints = typing.get_type_hints(cls)
        return [
            SettingInfo(
                name=f.name,
                type=hints[f.name],
                default=f.default,
                help=f.metadata.get("help", ""),
                minimum=f.metadata.get("minimum"),
                maximum=f.metadata.get("maximum"),
                above=f.metadata.get("above"),
                below=f.metadata.get("below"),
            )
            for f in dataclasses.fields(cls)
        ]

    @classmethod
    def names(cls) -> list[str]:
        """Every setting's name, in order."""
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Every setting at its default."""
        return cls().to_dict()

    @classmethod
    def check(cls, values: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults overridden by ``values``, each checked; a :class:`SettingsError` names the
        first unknown key (listing the valid ones) or the first bad value."""
        known = {f.name: f for f in cls.fields()}
        unknown = [key for key in values if key not in known]
        if unknown:
            raise SettingsError(
                f"{cls.model_name} has no setting {unknown[0]!r}; "
                f"valid settings: {', '.join(known)}"
            )
        checked = {key: _check(cls.model_name, known[key], value) for key, value in values.items()}
        return cls(**checked).to_dict()

    def to_dict(self) -> dict[str, Any]:
        """Every setting by name."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def describe(cls) -> str:
        """An aligned table of every setting: name, type, default, range and description."""
        rows = [("setting", "type", "default", "range", "description")]
        for f in cls.fields():
            text = f.help
            if typing.get_origin(f.type) is Literal:
                text += ": " + " | ".join(_show(a) for a in typing.get_args(f.type))
            rows.append((f.name, f.type_name, _show(f.default), f.range, text))
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        lines = []
        for row in rows:
            cells = [c.ljust(w) for c, w in zip(row[:4], widths, strict=True)]
            lines.append("  ".join([*cells, row[4]]).rstrip())
        return "\n".join(lines)


def _check(model: str, info: SettingInfo, value: Any) -> Any:
    """``value`` as the field's type, or a SettingsError saying what was expected."""
    options = _options(info.type)
    for option in options:
        ok, converted = _convert(option, value)
        if ok:
            _check_range(model, info, converted)
            return converted
    raise SettingsError(
        f"{model} setting {info.name!r} expects {_expects(info.type)}, got {_show(value)}"
    )


def _options(tp: Any) -> list[Any]:
    """A union's members; a Literal's values stay one option."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return list(typing.get_args(tp))
    return [tp]


def _convert(tp: Any, value: Any) -> tuple[bool, Any]:
    if tp is type(None):  # an optional setting's "not set" (JSON null)
        return value is None, value
    if typing.get_origin(tp) is Literal:
        return (value in typing.get_args(tp) and not _bool_vs_number(value, tp)), value
    if tp is bool:
        return isinstance(value, bool), value
    if isinstance(value, bool):  # True is an int to Python, not to a person
        return False, value
    if tp is int:
        if isinstance(value, int):
            return True, value
        if isinstance(value, float) and value.is_integer():
            return True, int(value)
        return False, value
    if tp is float:
        if isinstance(value, (int, float)) and math.isfinite(value):
            return True, float(value)
        return False, value
    if tp is str:
        return isinstance(value, str), value
    return False, value


def _bool_vs_number(value: Any, tp: Any) -> bool:
    """Literal[1] must not accept True (True == 1 in Python)."""
    return isinstance(value, bool) and not any(isinstance(a, bool) for a in typing.get_args(tp))


def _check_range(model: str, info: SettingInfo, value: Any) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return
    bad = (
        (info.minimum is not None and value < info.minimum)
        or (info.maximum is not None and value > info.maximum)
        or (info.above is not None and value <= info.above)
        or (info.below is not None and value >= info.below)
    )
    if bad:
        raise SettingsError(
            f"{model} setting {info.name!r} must be {info.range}, got {_show(value)}"
        )


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return " or ".join(sorted({_type_name(type(a)) for a in typing.get_args(tp)}))
    options = _options(tp)
    if len(options) > 1:
        return " or ".join(_type_name(o) for o in options)
    names = {int: "integer", float: "number", bool: "true/false", str: "string", type(None): "null"}
    return names.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def _expects(tp: Any) -> str:
    """What a message says a setting takes: "an integer", "one of "a", "b"", ..."""
    if typing.get_origin(tp) is Literal:
        return "one of " + ", ".join(_show(a) for a in typing.get_args(tp))
    options = _options(tp)
    if len(options) > 1:
        return " or ".join(_expects(o) for o in options)
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(
        tp, _type_name(tp)
    )


def _show(value: Any) -> str:
    """Values as they are written after ``--set KEY=`` (JSON)."""
    import json

    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def _num(value: float | None) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class ExampleSettings(ModelSettings):
    """What both Keras RS examples take: id embeddings trained by Adagrad on mini-batches."""

    embedding_dim: int = setting(32, "width of the user and movie id embeddings", minimum=1)
    epochs: int = setting(5, "passes over the training ratings", minimum=1)
    batch_size: int = setting(1000, "ratings per training batch", minimum=1)
    learning_rate: float = setting(0.1, "Adagrad step size", above=0.0)
    seed: int = setting(42, "seed of the weights and the shuffling")
