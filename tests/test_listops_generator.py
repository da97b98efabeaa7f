"""ListOps generator: values equal an independent evaluator's; bounds and label mix of the LRA spec.

The evaluator here parses the rendered string (not the generator's tree) with a stack and numpy.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from s4lab.data.generators.listops import evaluate, generate, generate_rows, render
from s4lab.data.listops import ListOps, read_tsv, tokenize

MINI = {"max_depth": 6, "max_args": 5, "min_length": 30, "max_length": 150}
OPS = {
    "[MIN": min,
    "[MAX": max,
    "[MED": lambda v: int(np.median(v)),
    "[SM": lambda v: sum(v) % 10,
}


def parse_and_evaluate(source: str) -> tuple[int, int]:
    """(value, operator nesting depth) of a rendered expression, read token by token."""
    stack: list[list] = []  # frames [operator, args]
    depth = 0
    value = None
    for tok in tokenize(source):
        if tok in OPS:
            stack.append([tok, []])
            depth = max(depth, len(stack))
        elif tok == "X":
            op, args = stack.pop()
            assert len(args) >= 2, f"operator {op} with {len(args)} arguments"
            value = OPS[op](args)
            if stack:
                stack[-1][1].append(value)
        else:
            stack[-1][1].append(int(tok))
    assert not stack and value is not None
    return value, depth


def test_rendering_matches_published_form():
    assert render(("[MAX", (2, 9))) == "( ( ( [MAX 2 ) 9 ) ] )"  # the published example
    tree = ("[MED", (1, 2, 8, ("[SM", (5, 9))))
    source = "( ( ( ( ( [MED 1 ) 2 ) 8 ) ( ( ( [SM 5 ) 9 ) ] ) ) ] )"
    assert render(tree) == source
    assert evaluate(tree) == parse_and_evaluate(source)[0] == 3  # median(1, 2, 4, 8) = 3
    assert evaluate(("[MED", (1, 2))) == 1  # int(1.5): the mean of the middle pair, truncated


def test_mini_rows_values_bounds_and_depth():
    rows = generate_rows(600, seed=1, **MINI)
    assert len({s for s, _ in rows}) == 600  # distinct
    for source, value in rows:
        assert source.startswith("( ") and source.endswith(" ] )")
        assert parse_and_evaluate(source)[0] == value
        assert MINI["min_length"] < len(tokenize(source)) < MINI["max_length"]
        assert parse_and_evaluate(source)[1] < MINI["max_depth"]  # depth max_depth is a leaf


def test_lra_spec_label_mix_and_lengths():
    rows = generate_rows(1000, seed=0)  # published spec: depth 10, 10 args, 500 < L < 2000
    lengths = [len(tokenize(s)) for s, _ in rows]
    assert min(lengths) > 500 and max(lengths) < 2000
    assert 900 < np.mean(lengths) < 1250  # ~1061 measured for the published spec
    mix = Counter(v for _, v in rows)
    share = {d: mix[d] / len(rows) for d in range(10)}
    assert 0.12 < share[0] < 0.22 and 0.12 < share[9] < 0.22  # ~17% each (MIN and MAX)
    assert all(0.04 < share[d] < 0.12 for d in range(1, 9))  # ~8% each
    assert all(parse_and_evaluate(s)[0] == v for s, v in rows[:200])


def test_seeded_and_independent_of_workers():
    serial = generate_rows(300, seed=5, **MINI)
    assert generate_rows(300, seed=5, workers=2, **MINI) == serial
    assert generate_rows(300, seed=6, **MINI) != serial


def test_independent_of_pythonhashseed():
    code = (
        "import hashlib; from s4lab.data.generators.listops import generate_rows; "
        "rows = generate_rows(200, seed=3, max_depth=6, max_args=5, min_length=30,"
        " max_length=150); "
        "print(hashlib.sha256(str(rows).encode()).hexdigest())"
    )
    digests = set()
    for hashseed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hashseed}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        digests.add(out.stdout.strip())
    expected = hashlib.sha256(str(generate_rows(200, seed=3, **MINI)).encode()).hexdigest()
    assert digests == {expected}


def test_writes_published_layout_read_by_the_loader(tmp_path: Path):
    paths = generate(tmp_path / "listops", n=250, seed=2, **MINI)
    assert {p.name for p in paths.values()} == {
        "basic_train.tsv",
        "basic_val.tsv",
        "basic_test.tsv",
    }
    assert paths["train"].read_bytes().startswith(b"Source\tTarget\r\n")  # csv.writer, as LRA
    sizes = {s: len(read_tsv(p)[0]) for s, p in paths.items()}
    assert sizes == {"train": 240, "val": 5, "test": 5}  # 96 / 2 / 2 %
    sources = [s for p in paths.values() for s in read_tsv(p)[0]]
    assert len(set(sources)) == 250  # no example shared between splits
    dm = ListOps(str(tmp_path / "listops"))
    dm.setup("fit")
    assert dm.vocab_size == 18 and len(dm.data_train) == 240


@pytest.mark.slow
def test_full_spec_label_mix_over_10k_rows():
    rows = generate_rows(10_000, seed=0, workers=2)
    mix = Counter(v for _, v in rows)
    assert abs(mix[0] / 10_000 - 0.17) < 0.02 and abs(mix[9] / 10_000 - 0.17) < 0.02
