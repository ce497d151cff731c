"""The documentation: a short README whose links resolve, a site whose nav pages exist,
and benchmark tables that are what ``benchmarks/plots.py`` makes from the results.

Cheap checks only (no mkdocs import); CI builds the site with ``mkdocs build --strict``.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
MKDOCS = ROOT / "mkdocs.yml"

# [text](target) links; images too.
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _nav_pages() -> list[str]:
    """Every page named in mkdocs.yml's nav (``- Title: page.md`` lines)."""
    text = MKDOCS.read_text()
    nav = text.split("\nnav:\n", 1)[1]
    nav = re.split(r"\n(?=\S)", nav, maxsplit=1)[0]  # up to the next top-level key
    return re.findall(r":\s*([\w./-]+\.md)\s*$", nav, re.M)


def _plots():
    spec = importlib.util.spec_from_file_location("plots", ROOT / "benchmarks" / "plots.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_is_at_most_8000_characters() -> None:
    assert len(README.read_text()) <= 8000


def test_every_nav_page_exists() -> None:
    pages = _nav_pages()
    assert len(pages) >= 10, pages
    missing = [page for page in pages if not (DOCS / page).is_file()]
    assert not missing, f"mkdocs.yml's nav names pages that do not exist: {missing}"


def test_every_page_is_in_the_nav() -> None:
    pages = set(_nav_pages())
    on_disk = {
        str(path.relative_to(DOCS))
        for path in DOCS.rglob("*.md")
        if "tables" not in path.relative_to(DOCS).parts
    }
    assert on_disk <= pages, f"pages missing from mkdocs.yml's nav: {sorted(on_disk - pages)}"


def test_every_docs_link_in_the_readme_exists() -> None:
    targets = [t for t in LINK.findall(README.read_text()) if not re.match(r"\w+://", t)]
    docs_links = [t for t in targets if t.startswith("docs/")]
    assert docs_links, "the README links to no documentation page"
    for target in targets:
        path = target.split("#", 1)[0]
        assert (ROOT / path).exists(), f"README links to {target}, which does not exist"


def test_benchmark_pages_use_what_plots_py_makes() -> None:
    """Every figure and table a page shows is one the script writes, and it writes them."""
    plots = _plots()
    tables = set(plots.tables())
    figures = {"quality-retrieval.png", "quality-ranking.png", "speed-retrieval.png"}
    figures |= {"speed-cli.png", "load.png", "load-explain.png", "streaming.png"}
    script = (ROOT / "benchmarks" / "plots.py").read_text()
    for figure in figures:
        assert f'"{figure}"' in script
    shown_tables, shown_figures = set(), set()
    for page in (DOCS / "benchmarks").glob("*.md"):
        text = page.read_text()
        shown_tables |= set(re.findall(r'--8<-- "benchmarks/tables/([\w.-]+)"', text))
        shown_figures |= set(re.findall(r"\]\(img/([\w.-]+)\)", text))
    assert shown_tables <= tables, shown_tables - tables
    assert shown_figures <= figures, shown_figures - figures
    assert shown_tables == tables, f"tables no page shows: {tables - shown_tables}"
    assert shown_figures == figures, f"figures no page shows: {figures - shown_figures}"


def test_committed_tables_are_what_plots_py_makes_from_the_results() -> None:
    plots = _plots()
    for name, text in plots.tables().items():
        path = plots.TABLES / name
        assert path.is_file(), f"{path} is missing: run python benchmarks/plots.py"
        assert path.read_text() == text, f"{path} is stale: run python benchmarks/plots.py"
    readme = README.read_text()
    assert plots.readme_with_headline(readme) == readme, (
        "README's table is stale: run python benchmarks/plots.py"
    )


def test_readme_has_one_results_table() -> None:
    rules = [line for line in README.read_text().splitlines() if re.match(r"\|(---\|)+$", line)]
    assert len(rules) == 1


@pytest.mark.parametrize("page", ["benchmarks/quality.md", "benchmarks/speed.md"])
def test_benchmark_pages_have_figures(page: str) -> None:
    assert "](img/" in (DOCS / page).read_text()
