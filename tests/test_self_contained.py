"""The repository explains itself: no comment or doc leans on something a clone does not have.

A reason given as a tracker number ("see the fourth issue") or as a file outside the repository reads as nothing
to the next maintainer, who has neither; the comment has to state the reason itself, or point at a file in the
repository (docs/ARCHITECTURE.md, docs/PROTOCOL.md, ...). And a doc that names a module by path names one that
exists, so a move of files leaves no stale map behind.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SKIPPED_DIRS = {".git", ".venv", "build", "node_modules", "__pycache__", ".mypy_cache", ".ruff_cache"}
SKIPPED_DIRS |= {".pytest_cache", ".hypothesis"}
TEXT_SUFFIXES = {".py", ".md", ".toml", ".cfg", ".txt", ".json", ".sh"}

# Built from pieces so that this file does not match itself.
_ISSUE = "issue"
TRACKER_NUMBER = re.compile(rf"\b{_ISSUE}s?\s*(#\s*)?\d+|\b{_ISSUE}\s*#|\bGH-\d+", re.IGNORECASE)
OUTSIDE = re.compile(r"\.\./" + "shared|" + "/work/" + "shared|" + r"(?<![\w/])" + "shared/" + "ARCHITECTURE")
# The architecture notes live in docs/; any other spelling of the name meant the copy outside the repository.
ARCHITECTURE_OUTSIDE_DOCS = re.compile(r"(?<![\w/`])" + "ARCHITECTURE" + r"\.md")

PROJECT_PATH = re.compile(
    r"(?<![\w/.-])((?:node|consensus|storage|offload|primitives|bench|tests|scripts|network_configs|docs)"
    r"/[\w/.*-]*[\w*])"
)


# What the repository holds (not the data dirs, caches and reports a run leaves in the working tree, nor the CI
# runner's entry point in .ci/, which describes the machine CI runs on).
SCANNED = ["primitives", "consensus", "storage", "offload", "node", "bench", "tests", "docs", "network_configs"]
SCANNED += ["scripts", "README.md", "pyproject.toml", "Makefile"]


def _text_files() -> Iterator[Path]:
    for path in sorted(p for name in SCANNED for p in [ROOT / name, *(ROOT / name).rglob("*")]):
        parts = set(path.relative_to(ROOT).parts)
        if parts & SKIPPED_DIRS or any(p.endswith(".egg-info") for p in parts):
            continue
        if (path.suffix in TEXT_SUFFIXES or path.name == "Makefile") and path.is_file():
            yield path


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    try:
        text = path.read_text()
    except (UnicodeDecodeError, FileNotFoundError):  # binary data, or moved away by a rename in progress
        return
    yield from enumerate(text.splitlines(), 1)


def test_no_tracker_numbers_or_files_outside_the_repository() -> None:
    found = []
    for path in _text_files():
        in_docs = path.parent == ROOT / "docs"
        for number, line in _lines(path):
            where = f"{path.relative_to(ROOT)}:{number}: {line.strip()[:100]}"
            if TRACKER_NUMBER.search(line) or OUTSIDE.search(line):
                found.append(where)
            elif not in_docs and ARCHITECTURE_OUTSIDE_DOCS.search(line.replace("docs/ARCHITECTURE.md", "")):
                found.append(where + "  (say docs/ARCHITECTURE.md)")
    assert not found, "state the reason itself, or point at a file in the repository:\n" + "\n".join(found)


def test_docs_name_only_files_that_exist() -> None:
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    missing = []
    for path in docs:
        for number, line in _lines(path):
            for match in PROJECT_PATH.finditer(line):
                named = match.group(1).rstrip(".")
                if "node_modules" in named:  # installed by npm when the JavaScript interop tests first run
                    continue
                exists = any(ROOT.glob(named)) if "*" in named else (ROOT / named).exists()
                if not exists:
                    missing.append(f"{path.relative_to(ROOT)}:{number}: {named}")
    assert not missing, "docs name files that do not exist (moved or renamed?):\n" + "\n".join(missing)


def test_the_patterns_catch_what_they_are_for() -> None:
    assert TRACKER_NUMBER.search("as measured in " + _ISSUE + " 7")
    assert TRACKER_NUMBER.search("(" + _ISSUE + " #5)")
    assert TRACKER_NUMBER.search(_ISSUE.capitalize() + "s 3-5")
    assert not TRACKER_NUMBER.search("an " + _ISSUE + " with the clock")
    assert OUTSIDE.search("see ../" + "shared/notes.md")
    assert ARCHITECTURE_OUTSIDE_DOCS.search("(ARCHITECTURE" + ".md §1)")
    assert not ARCHITECTURE_OUTSIDE_DOCS.search("docs/ARCHITECTURE" + ".md")
