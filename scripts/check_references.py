"""The repository stands on its own (`make lint`): what it cites is in it.

Every tracked text file is read for the documents it points at: `docs/<name>.md` named anywhere,
and the relative links of the Markdown files (`[text](path)`). Each must exist in the checkout.
Nothing may point outside it at a `shared/` folder (a clone has none).
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


def main() -> int:
    problems = [
        p for path in tracked() if path != Path(__file__).resolve() for p in problems_of(path)
    ]
    for problem in sorted(problems):
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
