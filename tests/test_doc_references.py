"""Every document the code and the configuration cite exists, and so does every section they cite by name:
``README "Backends"``, ``deploy/README.md "6. The code sandbox on Kubernetes"``, ``docs/dagster-notes.md
"Automation"``. A design document outside the repository (``DESIGN.md``) is cited nowhere."""

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: Where citations live: code, configuration, deployment, CI, docs (tests cite too).
SCANNED = ("eval_assets", "resources", "sandboxes", "deploy", "benchmarks", "docs", ".ci", "tests")
TOP_LEVEL = ("dagster.yaml", "workspace.yaml", "pyproject.toml", "README.md")
SUFFIXES = {".py", ".yaml", ".yml", ".md", ".toml", ".txt", ""}
#: ``README "Section"``, ``deploy/README.md, "Section"``, ``docs/x.md "Section"`` (also across a line break)
SECTION_REF = re.compile(
    r"(?P<doc>deploy/README\.md|docs/[\w.-]+\.md|(?<![\w/])README(?:\.md)?)(?:,| section| sections)?[ \t]*\n?"
    r'[ \t#]*"(?P<section>[^"\n]{3,80})"'
)
MD_FILE = re.compile(r"(?<![\w/.-])(?P<path>(?:[\w.-]+/)*[\w-]+\.md)\b")
NOT_IN_REPO = re.compile(r"\bDESIGN(?:\.md| ?§)")


def _files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", *SCANNED, *TOP_LEVEL],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    paths = [REPO / p for p in listed]
    return [p for p in paths if p.is_file() and p.suffix in SUFFIXES and p.name != "test_doc_references.py"]


def _headings(doc: Path) -> set[str]:
    return {
        line.lstrip("#").strip()
        for line in doc.read_text(encoding="utf-8").splitlines()
        if line.startswith("#")
    }


def _doc(name: str) -> Path:
    return REPO / ("README.md" if name.startswith("README") else name)


def test_the_scan_finds_the_citations_it_checks() -> None:
    text = "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in _files())
    found = {(m["doc"], m["section"]) for m in SECTION_REF.finditer(text)}
    assert ("README", "Backends") in found  # dagster.yaml's pointer to the PostgreSQL instance
    assert ("docs/dagster-notes.md", "Automation") in found


@pytest.mark.parametrize("path", _files(), ids=lambda p: str(p.relative_to(REPO)))
def test_cited_documents_and_sections_exist(path: Path) -> None:
    text = path.read_text(encoding="utf-8", errors="replace")
    problems = [f"cites {m.group(0)!r}: not in this repository" for m in NOT_IN_REPO.finditer(text)]
    for match in MD_FILE.finditer(text):
        cited = match["path"]
        if not ((REPO / cited).is_file() or (path.parent / cited).is_file()):
            problems.append(f"cites {cited}, which does not exist")
    for match in SECTION_REF.finditer(text):
        doc = _doc(match["doc"])
        if doc.is_file() and match["section"] not in _headings(doc):
            problems.append(
                f'cites {match["doc"]} "{match["section"]}": no such section in {doc.relative_to(REPO)}'
            )
    assert not problems, f"{path.relative_to(REPO)}:\n  " + "\n  ".join(problems)
