"""MkDocs hooks (mkdocs.yml ``hooks:``): the generated reference pages and a nav that misses no page.

- The configuration and API reference pages are rendered from the code at build time
  (scripts/docs_reference.py), so the site never shows a stale copy; the committed copies
  are checked against the same code by tests/documented/test_docs.py.
- A page under docs/ that the nav in mkdocs.yml does not list is added under "More" with
  its own title, so a page added on a branch is part of the site once merged.
- The home page is the README, its links into docs/ made relative to the site, so the front
  door is written once.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "scripts") not in sys.path:
    sys.path.insert(0, str(ROOT / "scripts"))

import docs_reference  # noqa: E402


def _listed(nav: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(nav, str):
        found.add(nav)
    elif isinstance(nav, list):
        for item in nav:
            found |= _listed(item)
    elif isinstance(nav, dict):
        for value in nav.values():
            found |= _listed(value)
    return found


def _title(path: Path) -> str:
    for line in path.read_text().splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return path.stem.replace("-", " ").capitalize()


def on_config(config: Any) -> Any:
    docs = Path(config["docs_dir"])
    listed = _listed(config["nav"])
    unlisted = sorted(p.relative_to(docs).as_posix() for p in docs.rglob("*.md")) if config["nav"] else []
    extra = [{_title(docs / page): page} for page in unlisted if page not in listed]
    if extra:
        config["nav"].append({"More": extra})
    return config


def home_page() -> str:
    """The README as the site's home page."""
    text = (ROOT / "README.md").read_text()
    return text.replace("](docs/)", "](index.md)").replace("](docs/", "](")


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    files.append(File.generated(config, "index.md", content=home_page()))
    for relative, text in docs_reference.pages().items():
        page = files.get_file_from_path(relative.as_posix())
        if page is not None:
            page.content_string = text
    return files
