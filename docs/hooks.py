"""MkDocs hook: show the Sphinx roles of the docstrings as plain code.

The docstrings use Google style with Sphinx roles (``:func:`train```); mkdocstrings
renders the role's name literally (":func:" before the code), and a paragraph
ending in a literal-block marker ("::") keeps both colons. This drops the role names
and one of the colons.
"""

from __future__ import annotations

import re

ROLE = re.compile(r":(?:py:)?(?:func|class|mod|meth|data|attr|exc|obj|const):(<code>)")
LITERAL_MARKER = re.compile(r"::</p>")


def on_page_content(html: str, **kwargs) -> str:
    """Remove the role names in front of code spans and the doubled colons."""
    return LITERAL_MARKER.sub(":</p>", ROLE.sub(r"\1", html))
