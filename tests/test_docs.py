"""The docs: the site builds with no warning (a broken link or anchor fails `--strict`), and the
README stays a front door: short, with every relative link pointing at a file that exists."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
README_MAX_LINES = 260

# [text](target) and ![alt](target), outside code; the target up to a space or the closing paren
_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def _without_code(text: str) -> str:
    """The markdown with fenced blocks and inline code removed, so `[x](y)` in code is no link."""
    text = re.sub(r"^(```|~~~).*?^\1[^\n]*$", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def relative_links(text: str) -> list[str]:
    targets = []
    for target in _LINK.findall(_without_code(text)):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith(("#", "//")):
            continue  # a URL, a mailto: or an anchor on the same page
        targets.append(target)
    return targets


def test_readme_is_short():
    lines = README.read_text().count("\n")
    assert lines <= README_MAX_LINES, (f"README.md has {lines} lines (at most {README_MAX_LINES}): measured tables "
                                       "and run histories go to docs/results.md")


def test_readme_relative_links_exist():
    links = relative_links(README.read_text())
    assert links, "expected README.md to link into docs/"
    missing = [t for t in links if not (ROOT / t.split("#", 1)[0]).exists()]
    assert not missing, f"README.md links to files that do not exist: {missing}"


def test_link_finder_skips_code_and_urls():
    text = "[a](docs/a.md) ![f](docs/f.png \"t\") [u](https://x.org) [h](#top)\n`[c](no.md)`\n```\n[d](no2.md)\n```\n"
    assert relative_links(text) == ["docs/a.md", "docs/f.png"]


@pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("material") is None,
                    reason="mkdocs and mkdocs-material are not installed (pip install -e '.[dev]')")
def test_mkdocs_build_strict(tmp_path):
    # NO_MKDOCS_2_WARNING: mkdocs-material's banner about MkDocs 2.0 is noise in a test log
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stdout}\n{result.stderr}"
    site = tmp_path / "site"
    # the generated reference pages exist and hold what the code defines
    configs = (site / "reference" / "configs" / "index.html").read_text()
    for name in ("SFTConfig", "RLConfig", "PRMConfig", "ServeConfig", "CardConfig", "group_size", "max_samples"):
        assert name in configs, f"{name} missing from the generated configuration reference"
    cli = (site / "reference" / "cli" / "index.html").read_text()
    for command in ("ponder ask", "ponder train", "ponder serve", "ponder eval", "ponder card", "ponder keys create"):
        assert command in cli, f"{command} missing from the generated CLI reference"
    assert (site / "reference" / "strategies" / "index.html").is_file()
    # every figure is shown on some page
    pages = "".join(p.read_text() for p in site.rglob("*.html"))
    for figure in (ROOT / "docs" / "figures").glob("*.png"):
        assert f"figures/{figure.name}" in pages, f"docs/figures/{figure.name} is not shown on any page"
