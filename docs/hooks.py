"""MkDocs hooks: settings tables from the settings dataclasses; Sphinx roles as plain code.

- A line ``<!-- settings: package.module:ClassName -->`` in a page becomes a table of
  every field of that :class:`movierec.models.settings.ModelSettings` dataclass (name,
  type, default, range, meaning), the same facts ``movierec train --help-settings``
  prints, so the page cannot drift from the code.
- The docstrings use Google style with Sphinx roles (``:func:`train```); mkdocstrings
  renders the role's name literally (":func:" before the code), and a paragraph ending
  in a literal-block marker ("::") keeps both colons. The roles' names and one of the
  colons are dropped.
"""

from __future__ import annotations

import importlib
import json
import re
import sys
import typing
from pathlib import Path
from typing import Any, Literal

ROLE = re.compile(r":(?:py:)?(?:func|class|mod|meth|data|attr|exc|obj|const):(<code>)")
LITERAL_MARKER = re.compile(r"::</p>")
SETTINGS = re.compile(r"^<!-- settings: ([\w.]+):(\w+) -->$", re.M)


def on_config(config: Any, **kwargs: Any) -> Any:
    """Import movierec from this checkout's ``src/`` (no install needed to build)."""
    src = str(Path(config["config_file_path"]).parent / "src")
    if src not in sys.path:
        sys.path.insert(0, src)
    return config


def _show(value: Any) -> str:
    """A value as it is written after ``--set KEY=`` (JSON)."""
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def settings_table(module: str, name: str) -> str:
    """A Markdown table of every field of the settings class ``module.name``."""
    cls = getattr(importlib.import_module(module), name)
    rows = ["| setting | type | default | range | meaning |", "|---|---|---|---|---|"]
    for field in cls.fields():
        meaning = field.help
        if typing.get_origin(field.type) is Literal:
            meaning += ": " + " \\| ".join(f"`{_show(a)}`" for a in typing.get_args(field.type))
        cells = [
            f"`{field.name}`",
            _cell(field.type_name),
            f"`{_show(field.default)}`",
            _cell(field.range),
            meaning,
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    """Expand the settings markers."""
    return SETTINGS.sub(lambda m: settings_table(m.group(1), m.group(2)), markdown)


def on_page_content(html: str, **kwargs: Any) -> str:
    """Remove the role names in front of code spans and the doubled colons."""
    return LITERAL_MARKER.sub(":</p>", ROLE.sub(r"\1", html))
