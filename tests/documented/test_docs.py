"""The documentation site: it builds with ``mkdocs build --strict`` (no broken link, no missing
page), its generated reference pages match the code, and the README's links resolve."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from credit_risk.config import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT / "scripts"))
import docs_reference

MKDOCS = [sys.executable, "-m", "mkdocs", "build", "--strict"]
BUILD_TIMEOUT = 300


def _build(config_file: Path, site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MKDOCS, "--config-file", str(config_file), "--site-dir", str(site)],
        cwd=PROJECT_ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        check=False,
    )


@pytest.mark.code
def test_the_committed_reference_pages_match_the_code() -> None:
    for relative, text in docs_reference.pages().items():
        committed = (PROJECT_ROOT / "docs" / relative).read_text()
        assert committed == text, f"docs/{relative} is stale: run `python scripts/docs_reference.py` and commit it"


@pytest.mark.code
def test_the_configuration_reference_names_every_key() -> None:
    from credit_risk.config import ModelConfig, TrainingConfig

    page = (PROJECT_ROOT / "docs" / docs_reference.CONFIG_PAGE).read_text()
    for section in ModelConfig().serving, TrainingConfig().cv:
        for key in type(section).model_fields:
            assert f".{key}` |" in page, f"{key} is missing from the configuration reference"


@pytest.mark.integration
def test_the_site_builds_strict_into_a_temp_folder(tmp_path: Path) -> None:
    done = _build(PROJECT_ROOT / "mkdocs.yml", tmp_path / "site")
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
    assert (tmp_path / "site" / "reference" / "configuration" / "index.html").is_file()
    assert not (PROJECT_ROOT / "site").exists(), "the build must not write into the repository"


@pytest.mark.integration
def test_a_broken_link_fails_the_build(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    shutil.copytree(PROJECT_ROOT / "docs", docs)
    (docs / "ui.md").write_text((docs / "ui.md").read_text() + "\nSee [the missing page](missing.md).\n")
    config = yaml.safe_load((PROJECT_ROOT / "mkdocs.yml").read_text())
    config["docs_dir"] = str(docs)
    config["hooks"] = [str(PROJECT_ROOT / hook) for hook in config["hooks"]]
    config_file = tmp_path / "mkdocs.yml"
    config_file.write_text(yaml.safe_dump(config))
    done = _build(config_file, tmp_path / "site")
    assert done.returncode != 0
    assert "missing.md" in done.stdout + done.stderr


@pytest.mark.code
def test_the_readme_links_resolve() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme)
    assert targets, "the README links into the docs"
    missing = [target for target in targets if "://" not in target and not (PROJECT_ROOT / target).exists()]
    assert not missing, f"README links to missing files: {missing}"


@pytest.mark.code
def test_the_readme_shows_a_screenshot_of_every_page() -> None:
    """Every page of the UI (ui/navigation.py) has its picture in docs/screenshots/, shown in the README."""
    from ui.navigation import PAGES

    readme = (PROJECT_ROOT / "README.md").read_text()
    shown = set(re.findall(r"!\[[^\]]*\]\(docs/screenshots/([\w-]+)\.png\)", readme))
    missing = [
        page.name
        for page in PAGES
        if page.name not in shown or not (PROJECT_ROOT / "docs" / "screenshots" / f"{page.name}.png").is_file()
    ]
    assert not missing, f"pages without a screenshot in the README: {missing} (ui/screenshots.py takes them)"


@pytest.mark.code
def test_the_readme_is_a_front_door() -> None:
    """Under 250 lines, the two commands and the roles within its first screens."""
    lines = (PROJECT_ROOT / "README.md").read_text().splitlines()
    assert len(lines) < 250, f"README has {len(lines)} lines"
    head = "\n".join(lines[:80])
    assert "make up" in head and "make test" in head and "## Roles" in head
