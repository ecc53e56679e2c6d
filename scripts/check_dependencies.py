"""Each package declares what its code imports, and imports what it declares (`make lint`).

For every workspace member, the third-party and workspace packages its `src/` imports must be
among its `[project] dependencies`, and each of those must be imported (an extra such as
`uvicorn[standard]` counts as its package; an optional extra's packages count as declared).
For the workspace root, what `tests/`, `bench/`, the root `conftest.py` and every member's
`tests/` import must be declared in the root's
`dev` group or dependencies; the group's tools (pytest plugins, ruff, mypy, stubs) are not
imported and are not asked to be. `tests/client/` is left out: it runs in the real client's
own venv. Run with the venv's python, where the installed distributions tell which package an
import name belongs to.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from collections.abc import Iterable, Iterator
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOT_CHECKED = ("tests/client",)


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    return canonical(re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0])


def python_files(folders: Iterable[Path]) -> Iterator[Path]:
    for folder in folders:
        if folder.is_file():
            yield folder
            continue
        for path in sorted(folder.rglob("*.py")):
            if not any(path.is_relative_to(ROOT / skipped) for skipped in NOT_CHECKED):
                yield path


def imported_names(files: Iterable[Path]) -> set[str]:
    """The top-level names of every absolute import in ``files``."""
    names: set[str] = set()
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def distributions(names: Iterable[str], local: set[str]) -> dict[str, set[str]]:
    """Import name -> the distributions that provide it, for names neither local nor stdlib."""
    installed = packages_distributions()
    found: dict[str, set[str]] = {}
    for name in sorted(names):
        if name in local or name in sys.stdlib_module_names or name == "__future__":
            continue
        if name.startswith("cmf_"):  # workspace members (editable installs)
            found[name] = {canonical(name)}
        else:
            found[name] = {canonical(d) for d in installed.get(name, [name])}
    return found


def problems_of(
    label: str, files: list[Path], declared: set[str], local: set[str], *, check_unused: bool
) -> list[str]:
    needed = distributions(imported_names(files), local)
    problems = [
        f"{label}: imports {name} but declares none of {', '.join(sorted(dists))}"
        for name, dists in needed.items()
        if not dists & declared
    ]
    if check_unused:
        used = set().union(*needed.values()) if needed else set()
        problems += [f"{label}: declares {d} but never imports it" for d in sorted(declared - used)]
    return problems


def main() -> int:
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())
    members = [ROOT / m for m in root["tool"]["uv"]["workspace"]["members"]]
    problems: list[str] = []
    for member in members:
        project = tomllib.loads((member / "pyproject.toml").read_text())["project"]
        declared = {requirement_name(r) for r in project.get("dependencies", [])}
        # An extra's packages are imported only where that extra is needed (the SDK's pandas).
        for extra in project.get("optional-dependencies", {}).values():
            declared |= {requirement_name(r) for r in extra}
        files = list(python_files([member / "src"]))
        own = {p.name for p in (member / "src").iterdir() if p.is_dir()}
        label = str(member.relative_to(ROOT))
        problems += problems_of(label, files, declared, own, check_unused=True)
    root_declared = {requirement_name(r) for r in root["project"].get("dependencies", [])}
    for group in root.get("dependency-groups", {}).values():
        root_declared |= {requirement_name(r) for r in group if isinstance(r, str)}
    folders = [ROOT / "tests", ROOT / "bench", ROOT / "conftest.py"]
    folders += [m / "tests" for m in members if (m / "tests").is_dir()]
    files = list(python_files(folders))
    local = {p.stem for p in files} | {"bench"}
    problems += problems_of("tests and bench", files, root_declared, local, check_unused=False)
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
