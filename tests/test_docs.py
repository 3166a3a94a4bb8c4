"""The documents the code cites exist in the repository, under docs/."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CITED = re.compile(r"\b(?:docs/[a-z_]+|[A-Z_]+)\.md\b")  # docs/name.md, or NAME.md at the top


def cited_documents() -> dict[str, set[str]]:
    """Each Markdown file named in a source file of the package, bench/ or tests/ (but this one), with where."""
    found: dict[str, set[str]] = {}
    for folder in ("zfaccel", "bench", "tests"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in (".py", ".sh") and path.is_file() and path != Path(__file__).resolve():
                for name in CITED.findall(path.read_text(errors="replace")):
                    found.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_cited_document_exists():
    missing = {name: sorted(where) for name, where in cited_documents().items() if not (ROOT / name).is_file()}
    assert not missing, f"cited but not in the repository (write it under docs/ and cite that): {missing}"


def test_the_docs_the_code_relies_on_are_there():
    for name in ("performance.md", "architecture.md"):
        assert (ROOT / "docs" / name).is_file(), name
    assert "docs/performance.md" in cited_documents()
