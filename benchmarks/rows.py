"""Benchmark rows out: JSON lines as they come, and markdown re-rendered after every row, so a run
stopped by a timeout keeps both. The heading names the device and torch version of the rows."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

Row = dict[str, Any]


def heading(title: str, rows: Sequence[Row]) -> str:
    """`## title: device, torch version` (every device the rows ran on)."""
    places = dict.fromkeys(f"{r['device']}, torch {r['torch']}" for r in rows if "device" in r)
    return f"## {title}: {'; '.join(places) or 'no rows yet'}"


def protocol(rows: Sequence[Row]) -> str:
    """How the rows' times were taken, from the first measured row."""
    row = next((r for r in rows if "repeats" in r), None)
    if row is None:
        return ""
    return f"Time: the mean of {steps(row['repeats'])} after {steps(row['warmup'], 'warm-up ')}."


def steps(n: int, kind: str = "") -> str:
    return f"{n} {kind}step{'' if n == 1 else 's'}"


def markdown_table(header: Sequence[str], lines: Sequence[Sequence[str]]) -> str:
    return "\n".join(
        [
            "| " + " | ".join(header) + " |",
            "|" + "|".join("---" for _ in header) + "|",
            *("| " + " | ".join(line) + " |" for line in lines),
        ]
    )


def number(value: float | None, digits: int = 2) -> str:
    """A value for a table cell; at least 3 significant digits for small values."""
    if value is None:
        return "–"
    if value != 0 and abs(value) < 10 ** (2 - digits):
        return f"{value:.3g}"
    return f"{value:,.{digits}f}"


def cell(row: Row | None, key: str, digits: int = 2) -> str:
    """A row's value, or what happened instead: not run, oom, skipped, error."""
    if row is None:
        return "–"
    if row.get("status", "ok") != "ok":
        return row["status"]
    return number(row.get(key), digits)


def reasons(rows: Sequence[Row]) -> list[str]:
    """One line per distinct reason why rows were not measured."""
    seen = dict.fromkeys(
        f"{r['status']}: {r['reason']}" for r in rows if r.get("status", "ok") != "ok"
    )
    return [f"- {reason}" for reason in seen]


class RowWriter:
    """Print each row as a JSON line, append it to `out`, rewrite `markdown` from all rows: the
    script's render(rows), how the times were taken, and `note`."""

    def __init__(
        self,
        out: Path | None,
        markdown: Path | None,
        render: Callable[[list[Row]], str],
        note: str | None = None,
    ) -> None:
        self.out, self.markdown, self.render, self.note = out, markdown, render, note
        self.rows: list[Row] = []
        for path in (out, markdown):
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
        if out is not None:
            out.write_text("")

    def add(self, row: Row) -> None:
        line = json.dumps(row)
        print(line, flush=True)
        self.rows.append(row)
        if self.out is not None:
            with self.out.open("a") as f:
                f.write(line + "\n")
        if self.markdown is not None:
            lines = [protocol(self.rows), self.note or ""]
            tail = "".join(f"\n{line}\n" for line in lines if line)
            self.markdown.write_text(self.render(self.rows) + tail)
