"""Where the benchmarks' figures go: each benchmark owns one section of ``bench/RESULTS.md``,
between ``<!-- name:start -->`` and ``<!-- name:end -->``, and rewrites only that."""

from __future__ import annotations

from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def update_results(start: str, end: str, title: str, section: str) -> None:
    """Replace what lies between ``start`` and ``end`` (or append the section under ``title``)."""
    block = f"{start}\n{section}\n{end}"
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmarks\n"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + f"\n\n## {title}\n\n" + block + "\n"
    RESULTS.write_text(text)
