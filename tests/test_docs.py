"""The documentation: README and DESIGN stay short, docs/ has its topic pages, every relative link (and
its #anchor) resolves, long pages open with a table of contents, and every concrete ``lt-faceparse``
command shown in a shell block parses with the real command line."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from lt_faceparse.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
MAX_BYTES = 12_000
TOPIC_PAGES = ("datasets", "training", "longtail", "reports", "conventions", "speed")
FENCE = re.compile(r"^```.*?^```", re.M | re.S)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
SHELL_BLOCK = re.compile(r"^```bash\n(.*?)^```", re.M | re.S)


def doc_files() -> list[Path]:
    return [ROOT / "README.md", ROOT / "DESIGN.md", *sorted((ROOT / "docs").glob("*.md")),
            ROOT / "reports" / "history.md"]


def github_anchors(markdown: str) -> set[str]:
    """The #anchors GitHub makes from a page's headings (code blocks excluded, duplicates numbered)."""
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    for line in FENCE.sub("", markdown).splitlines():
        match = re.match(r"#{1,6} (.+)", line)
        if not match:
            continue
        slug = re.sub(r"[^\w\- ]", "", match.group(1).strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def relative_links(markdown: str) -> list[str]:
    return [target for target in LINK.findall(FENCE.sub("", markdown))
            if not re.match(r"[a-z]+:", target)]


def test_github_anchors_follow_githubs_rule() -> None:
    page = "# Top\n## Choosing the CPU plan (`DEFAULT`)\n```\n# not a heading\n```\n## Top\n## Δ vs plain"
    assert github_anchors(page) == {"top", "choosing-the-cpu-plan-default", "top-1", "δ-vs-plain"}


@pytest.mark.parametrize("name", ["README.md", "DESIGN.md"])
def test_readme_and_design_are_at_most_12000_bytes(name: str) -> None:
    assert len((ROOT / name).read_bytes()) <= MAX_BYTES


def test_docs_has_one_page_per_topic() -> None:
    missing = [page for page in TOPIC_PAGES if not (ROOT / "docs" / f"{page}.md").is_file()]
    assert not missing


@pytest.mark.parametrize("path", doc_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(path: Path) -> None:
    broken = []
    for target in relative_links(path.read_text()):
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in github_anchors(linked.read_text()):
            broken.append(f"{target}: no such heading")
    assert not broken, f"{path.name}: {broken}"


@pytest.mark.parametrize("path", sorted((ROOT / "docs").glob("*.md")), ids=lambda p: p.name)
def test_long_pages_open_with_a_table_of_contents(path: Path) -> None:
    text = path.read_text()
    if len(text) < 4000:
        return
    head = "\n".join(text.splitlines()[:8])
    own_anchors = [t for t in relative_links(head) if t.startswith("#")]
    assert len(own_anchors) >= 2, f"{path.name} has no table of contents in its first lines"


def shown_commands() -> list[tuple[str, str]]:
    """(page, command) for each concrete ``lt-faceparse`` command in a bash block (no placeholders)."""
    commands = []
    for path in doc_files():
        for block in SHELL_BLOCK.findall(path.read_text()):
            for line in block.replace("\\\n", " ").splitlines():
                for part in line.split("&&"):
                    words = part.split("#")[0].strip()
                    if re.match(r"(\.venv/bin/)?lt-faceparse ", words) and not re.search(r"[\[|$]|\.\.\.", words):
                        commands.append((path.name, words))
    return commands


def test_commands_are_found() -> None:
    assert {page for page, _ in shown_commands()} >= {"README.md", "datasets.md", "reports.md"}
    assert len([c for page, c in shown_commands() if page == "README.md"]) >= 10


@pytest.mark.parametrize("page,command", shown_commands())
def test_shown_commands_parse(page: str, command: str) -> None:
    args = shlex.split(command)[1:]
    try:
        build_parser().parse_args(args)
    except SystemExit as exit_:
        pytest.fail(f"{page}: `{command}` does not parse (exit {exit_.code})")
