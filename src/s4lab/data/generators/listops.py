"""LRA ListOps generator: random operator trees written as the released `basic_{split}.tsv` files.

The published algorithm (LRA `data/listops.py`), re-written with a seeded RNG:
  node(depth): r ~ U(0, 1) if depth < max_depth else 1;  r > 0.25 -> leaf digit ~ U{0..9};
               else n ~ U{2..max_args} children node(depth + 1), operator ~ U{MIN, MAX, MED, SM}
  length = 1 per digit, 2 per operator node ([OP and ]);  keep iff min_length < length < max_length
  value:  MIN, MAX;  MED = int(median) (mean of the two middle values, truncated);  SM = sum % 10
  render: left-nested pairs, ((([MAX 2) 9) ]) -> "( ( ( [MAX 2 ) 9 ) ] )"
Distinct trees (duplicates dropped) are split in generation order: first 96%, next 2%, last 2%.
Reproducible: the RNG of chunk k is seeded by the string "listops:<seed>:<k>" (independent of
PYTHONHASHSEED and of the number of workers); insertion order replaces LRA's unordered set.
A tree is abandoned as soon as it reaches max_length (it would be rejected anyway, and trees are
independent, so the accepted ones keep the published distribution); this bounds the work per tree.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator
from multiprocessing import Pool
from pathlib import Path

OPERATORS = ("[MIN", "[MAX", "[MED", "[SM")
END = "]"
VALUE_P = 0.25  # probability that a node above max_depth is an operator
SPLIT_FRACTIONS = {"train": 0.96, "val": 0.02, "test": 0.02}

Tree = int | tuple[str, tuple["Tree", ...]]


class _TooLong(Exception):
    """A tree grew past max_length: abandon it and draw another."""


def sample_tree(
    rng: random.Random, max_depth: int = 10, max_args: int = 10, max_length: int = 2000
) -> tuple[Tree, int] | None:
    """One tree and its token count, or None as soon as the count reaches max_length."""
    count = [0]

    def node(depth: int) -> Tree:
        r = rng.random() if depth < max_depth else 1.0
        if r > VALUE_P:
            count[0] += 1
            if count[0] >= max_length:
                raise _TooLong
            return rng.randint(0, 9)
        n = rng.randint(2, max_args)
        count[0] += 2
        children = tuple(node(depth + 1) for _ in range(n))
        return rng.choice(OPERATORS), children

    try:
        tree = node(1)
    except _TooLong:
        return None
    return tree, count[0]


def evaluate(tree: Tree) -> int:
    """Value 0-9 of a tree."""
    if isinstance(tree, int):
        return tree
    op, children = tree
    values = sorted(evaluate(c) for c in children)
    if op == "[MIN":
        return values[0]
    if op == "[MAX":
        return values[-1]
    if op == "[MED":
        mid = len(values) // 2
        return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) // 2
    return sum(values) % 10


def render(tree: Tree) -> str:
    """The released string form: each (a, b) pair of the left-nested tree becomes `( a b )`."""
    if isinstance(tree, int):
        return str(tree)
    op, children = tree
    s = op
    for child in children:
        s = f"( {s} {render(child)} )"
    return f"( {s} {END} )"


def generate_chunk(
    seed: int,
    chunk: int,
    size: int,
    max_depth: int,
    max_args: int,
    min_length: int,
    max_length: int,
) -> list[tuple[str, int]]:
    """`size` accepted (string, value) rows from the RNG of chunk `chunk`."""
    rng = random.Random(f"listops:{seed}:{chunk}")
    rows = []
    while len(rows) < size:
        sampled = sample_tree(rng, max_depth, max_args, max_length)
        if sampled is not None and sampled[1] > min_length:
            rows.append((render(sampled[0]), evaluate(sampled[0])))
    return rows


def _chunk_args(args: tuple) -> list[tuple[str, int]]:
    return generate_chunk(*args)


def generate_rows(
    n: int,
    seed: int = 0,
    max_depth: int = 10,
    max_args: int = 10,
    min_length: int = 500,
    max_length: int = 2000,
    workers: int = 1,
    chunk_size: int = 1000,
) -> list[tuple[str, int]]:
    """`n` distinct (string, value) rows in generation order; the same for any `workers`."""
    rows: dict[str, int] = {}
    next_chunk = 0
    params = (max_depth, max_args, min_length, max_length)
    with Pool(workers) if workers > 1 else _Serial() as pool:
        while len(rows) < n:
            n_chunks = -(-(n - len(rows)) // chunk_size)
            jobs = [
                (seed, k, chunk_size, *params) for k in range(next_chunk, next_chunk + n_chunks)
            ]
            next_chunk += n_chunks
            for chunk_rows in pool.imap(_chunk_args, jobs):
                for source, value in chunk_rows:
                    if len(rows) < n:
                        rows.setdefault(source, value)
    return list(rows.items())


class _Serial:
    """Pool stand-in for workers = 1: same interface, no processes."""

    def imap(self, fn, jobs) -> Iterator:
        return map(fn, jobs)

    def __enter__(self) -> _Serial:
        return self

    def __exit__(self, *exc) -> None:
        return None


def split_sizes(n: int) -> dict[str, int]:
    """96/2/2 split of n rows (the released 96,000 / 2,000 / 2,000 for n = 100,000)."""
    n_val = n_test = round(n * SPLIT_FRACTIONS["val"])
    return {"train": n - n_val - n_test, "val": n_val, "test": n_test}


def generate(
    out_dir: str | Path,
    n: int = 100_000,
    seed: int = 0,
    max_depth: int = 10,
    max_args: int = 10,
    min_length: int = 500,
    max_length: int = 2000,
    workers: int = 1,
) -> dict[str, Path]:
    """Write `<out_dir>/basic_{train,val,test}.tsv`, header `Source\\tTarget`; return the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = generate_rows(n, seed, max_depth, max_args, min_length, max_length, workers)
    paths, start = {}, 0
    for split, size in split_sizes(n).items():
        paths[split] = out_dir / f"basic_{split}.tsv"  # LRA's task name "basic" in every file
        tmp = paths[split].with_suffix(".tsv.tmp")
        with open(tmp, "w", newline="") as f:
            writer = csv.writer(f, delimiter="\t")  # as LRA: csv defaults, so CRLF line ends
            writer.writerow(["Source", "Target"])
            writer.writerows(rows[start : start + size])
        tmp.replace(paths[split])
        start += size
    return paths
