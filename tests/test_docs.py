"""The documentation that is generated from code, or must agree with it, still does."""

from __future__ import annotations

import re
from pathlib import Path

from ftbench.config.options import OPTIONS, options_markdown

ROOT = Path(__file__).resolve().parents[1]


def test_options_page_is_generated_from_the_option_table() -> None:
    page = (ROOT / "docs" / "options.md").read_text(encoding="utf-8")
    assert page == options_markdown(), (
        "docs/options.md is stale: regenerate it with `ftbench options > docs/options.md`"
    )
    for option in OPTIONS:
        assert f"`--ftb-{option.name}`" in page


def test_readme_puts_install_main_job_and_tests_on_its_first_screens() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    first = "\n".join(lines[:60])
    for command in ("pip install torch==2.13.0", 'pip install -e ".[test]"', "pytest bench/"):
        assert command in first, f"README: {command!r} is not in its first 60 lines"
    assert "pytest tests/" in first
    assert len("\n".join(lines)) <= 10_000, (
        "README: over 10,000 characters; move reference to docs/"
    )


def test_every_relative_link_in_the_docs_resolves() -> None:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    broken = []
    for page in pages:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not broken, "broken links: " + ", ".join(broken)
