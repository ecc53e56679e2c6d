"""The repository stands on its own (`make lint`): what it cites is in it.

Every tracked text file is read for the documents it points at: `docs/<name>.md` named anywhere,
and the relative links of the Markdown files (`[text](path)`). Each must exist in the checkout.
Nothing may point outside it at a `shared/` folder (a clone has none). The README's layout table
(`| folder | package | what it holds |`) names every folder of the checkout: each top-level one,
and each one inside `libs/`, `services/` and `tests/`; and every folder it names exists.
`make bench` runs every benchmark that records its figures in `bench/RESULTS.md` (the
Makefile's `BENCHES`).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEXT = {".py", ".md", ".sql", ".toml", ".sh", ".txt", ".yaml", ".yml", ".cfg", ""}
DOC = re.compile(r"\bdocs/[\w.-]+\.md\b")
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
OUTSIDE = re.compile(r"\.\./shared\b|/work/shared\b")
LAYOUT_HEAD = "| folder | package | what it holds |"
LAYOUT_ROW = re.compile(r"^\| `([^`]+)` \|")
GROUPS = {"libs", "services", "tests"}  # folders the table lists by their subfolders
BENCHES = re.compile(r"^BENCHES := ((?:.*\\\n)*.*)$", re.MULTILINE)


def tracked() -> list[Path]:
    names = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, text=True
    ).stdout.split("\0")
    return [ROOT / n for n in names if n and (ROOT / n).suffix in TEXT and (ROOT / n).is_file()]


def problems_of(path: Path) -> list[str]:
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        return []
    where = path.relative_to(ROOT)
    found = [f"{where}: points outside the repository ({m})" for m in OUTSIDE.findall(text)]
    found += [
        f"{where}: cites {d}, which does not exist"
        for d in set(DOC.findall(text))
        if not (ROOT / d).is_file()
    ]
    if path.suffix == ".md":
        for target in set(LINK.findall(text)):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (path.parent / target).exists():
                found.append(f"{where}: links {target}, which does not exist")
    return found


def layout_problems(files: list[Path]) -> list[str]:
    """What the README's layout table leaves out of the checkout's folders, or names wrongly."""
    lines = (ROOT / "README.md").read_text().splitlines()
    if LAYOUT_HEAD not in lines:
        return [f"README.md: no layout table ({LAYOUT_HEAD})"]
    listed: set[str] = set()
    for line in lines[lines.index(LAYOUT_HEAD) + 2 :]:
        row = LAYOUT_ROW.match(line)
        if row is None:
            break
        listed.add(row.group(1).rstrip("/"))
    folders: set[str] = set()
    for path in files:
        parts = path.relative_to(ROOT).parts
        depth = 2 if parts[0] in GROUPS else 1
        if len(parts) > depth:
            folders.add("/".join(parts[:depth]))
    found = [f"README.md: the layout table leaves out {f}/" for f in sorted(folders - listed)]
    found += [
        f"README.md: the layout table names {f}/, which does not exist"
        for f in sorted(listed)
        if not (ROOT / f).is_dir()
    ]
    return found


def bench_problems() -> list[str]:
    """The benchmarks that write ``bench/RESULTS.md`` and ``make bench`` leaves out."""
    found = BENCHES.search((ROOT / "Makefile").read_text())
    if found is None:
        return ["Makefile: no BENCHES list"]
    run = set(found.group(1).replace("\\\n", " ").split())
    writers = {
        path.stem
        for path in (ROOT / "bench").glob("*.py")
        if path.stem != "results" and "update_results(" in path.read_text()
    }
    return [f"Makefile: make bench leaves out bench.{name}" for name in sorted(writers - run)] + [
        f"Makefile: BENCHES names bench.{name}, which does not exist"
        for name in sorted(run)
        if not (ROOT / "bench" / f"{name}.py").is_file()
    ]


def main() -> int:
    files = tracked()
    problems = [p for path in files if path != Path(__file__).resolve() for p in problems_of(path)]
    problems += layout_problems(files) + bench_problems()
    for problem in sorted(problems):
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
