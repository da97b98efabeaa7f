"""Generated tasks: targets recomputed here by plain loops, seeding, shapes. CPU, tiny sizes."""

from __future__ import annotations

import math
import re

import pytest
import torch
from conftest import TINY, train_checked

from s4lab.data.synthetic.adding import Adding
from s4lab.data.synthetic.associative_recall import AssociativeRecall
from s4lab.data.synthetic.base import IGNORE_INDEX
from s4lab.data.synthetic.copying import Copying
from s4lab.data.synthetic.delay import Delay
from s4lab.data.synthetic.induction_heads import InductionHeads

SMALL = {"n_train": 64, "n_val": 32, "n_test": 32, "batch_size": 8}


def examples(dm, split: str = "val") -> tuple[torch.Tensor, torch.Tensor]:
    """Every example of a split, stacked, read through the dataset's own __getitem__."""
    if dm.data_train is None:
        dm.setup("fit")
    ds = getattr(dm, f"data_{split}")
    x, y = zip(*(ds[i] for i in range(len(ds))), strict=True)
    return torch.stack(x), torch.stack(y)


TASKS = {
    "copying": lambda **kw: Copying(l_noise=20, l_memorize=5, **SMALL, **kw),
    "selective_copying": lambda **kw: Copying(
        l_noise=20, l_memorize=5, selective=True, **SMALL, **kw
    ),
    "adding": lambda **kw: Adding(l_seq=50, **SMALL, **kw),
    "delay": lambda **kw: Delay(l_seq=256, l_lag=32, n_lag=2, dt=1 / 256, freq=20.0, **SMALL, **kw),
    "induction_heads": lambda **kw: InductionHeads(l_seq=30, **SMALL, **kw),
    "associative_recall": lambda **kw: AssociativeRecall(l_seq=40, **SMALL, **kw),
}


@pytest.mark.parametrize("selective", [False, True])
def test_copying_targets_are_the_data_tokens_in_order(selective):
    M, l_noise, A = 5, 20, 10
    x, y = examples(
        Copying(n_tokens=A, l_noise=l_noise, l_memorize=M, selective=selective, **SMALL)
    )
    assert x.shape == y.shape == (32, 2 * M + l_noise)
    moved = 0
    for xi, yi in zip(x.tolist(), y.tolist(), strict=True):
        data_region, markers = xi[: M + l_noise], xi[M + l_noise :]
        positions = [t for t, token in enumerate(data_region) if token != 0]
        assert [data_region[t] for t in positions] == yi[-M:]
        assert all(1 <= token <= A - 2 for token in yi[-M:])
        assert markers == [A - 1] * M
        assert yi[:-M] == [IGNORE_INDEX] * (M + l_noise)
        assert len(positions) == M
        moved += positions != list(range(M))
    assert moved >= 30 if selective else moved == 0


def test_adding_target_is_the_sum_of_the_two_marked_values():
    L = 50
    dm = Adding(l_seq=L, **SMALL)
    x, y = examples(dm)
    assert x.shape == (32, L + 1, 2) and y.shape == (32, 1, 1)
    assert (dm.horizon, dm.d_input, dm.d_output, dm.l_max) == (1, 2, 1, L + 1)
    for xi, yi in zip(x, y, strict=True):
        marked = [t for t in range(L) if xi[t, 1] == 1.0]
        assert len(marked) == 2 and marked[0] < L // 2 <= marked[1]
        assert sum(xi[t, 1].item() for t in range(L)) == 2.0  # the other markers are 0
        assert yi.item() == pytest.approx(xi[marked[0], 0].item() + xi[marked[1], 0].item())
        assert torch.all(xi[L] == 0)  # the query step
        assert torch.all((xi[:L, 0] >= 0) & (xi[:L, 0] < 1))


def test_delay_targets_are_lagged_band_limited_noise():
    L, lag, freq, dt = 256, 32, 20.0, 1 / 256
    dm = Delay(l_seq=L, l_lag=lag, n_lag=2, dt=dt, freq=freq, **SMALL)
    x, y = examples(dm)
    assert x.shape == (32, L, 1) and y.shape == (32, L, 2) and dm.horizon == L
    for j in (1, 2):
        torch.testing.assert_close(y[:, j * lag :, j - 1], x[:, : L - j * lag, 0])
        assert torch.all(y[:, : j * lag, j - 1] == 0)
    assert torch.all(x[:, 0] == 0)  # starts at 0
    spectrum = torch.fft.rfft(x[..., 0].double(), dim=-1).abs()  # (B, L/2 + 1)
    above = torch.fft.rfftfreq(L, d=dt) > freq
    assert spectrum[:, above].max() < 1e-4 * spectrum.max()  # nothing above the cutoff
    assert 0.3 < x.std(dim=1).mean() < 0.7  # rms 0.5 around each signal's own mean


def test_induction_heads_answer_follows_the_first_trigger():
    dm = InductionHeads(n_tokens=20, l_seq=30, **SMALL)
    for split in ("train", "val"):
        x, y = examples(dm, split)
        assert x.shape == y.shape == (len(x), 31)
        for xi, yi in zip(x.tolist(), y.tolist(), strict=True):
            triggers = [t for t, token in enumerate(xi) if token == dm.trigger]
            assert len(triggers) == 2 and triggers[1] == 30  # once inside, once at the end
            assert yi[-1] == xi[triggers[0] + 1]
            assert max(xi[: triggers[0]] + xi[triggers[0] + 1 : -1]) < 18  # ordinary tokens
            if split == "train":
                assert yi[:-1] == xi[1:]  # next-token targets everywhere
            else:
                assert yi[:-1] == [IGNORE_INDEX] * 30  # answer only


@pytest.mark.parametrize("allow_dot", [False, True])
def test_associative_recall_answer_is_the_value_of_the_query(allow_dot):
    dm = AssociativeRecall(n_tokens=20, l_seq=8, allow_dot=allow_dot, **SMALL)  # 4 pairs, 9 keys
    x, y = examples(dm)
    assert x.shape == y.shape == (32, 10)
    absent = 0
    for xi, yi in zip(x.tolist(), y.tolist(), strict=True):
        pairs = {}
        for k, v in zip(xi[0:8:2], xi[1:8:2], strict=True):
            assert 0 <= k < 9 and 9 <= v < 18
            assert pairs.setdefault(k, v) == v  # one value per key within an example
        assert xi[8] == 18  # `=>`
        query = xi[9]
        assert yi[-1] == pairs.get(query, 19)  # `.` when the key is absent
        absent += query not in pairs
    assert absent == 0 if not allow_dot else absent > 0


@pytest.mark.parametrize("task", sorted(TASKS))
def test_same_seed_same_data_and_splits_differ(task):
    a, b, c = TASKS[task](seed=1), TASKS[task](seed=1), TASKS[task](seed=2)
    xa, ya = examples(a)
    xb, yb = examples(b)
    assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert not torch.equal(examples(c)[0], xa)
    assert not torch.equal(examples(a, "test")[0], xa)
    bigger = TASKS[task](seed=1)
    bigger.n_train = 1_000  # split sizes do not move the other splits' examples
    assert torch.equal(examples(bigger)[0], xa)


@pytest.mark.parametrize("task", sorted(TASKS))
def test_loader_batches_match_the_declared_sizes(task):
    dm = TASKS[task]()
    dm.setup("fit")
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape[:2] == (8, dm.l_max) and y.shape[0] == 8
    if dm.vocab_size is None:  # continuous: forecasting-style (x, y)
        assert x.dtype == y.dtype == torch.float32
        assert (x.shape[2], y.shape[1:]) == (dm.d_input, (dm.horizon, dm.d_output))
        assert dm.mean.shape == dm.std.shape == (dm.d_output,)
    else:  # per-position token targets
        assert x.dtype == y.dtype == torch.int64 and y.shape == x.shape
        assert dm.d_input == dm.d_output == dm.vocab_size > x.max()
        assert set(y[y >= 0].tolist()) <= set(range(dm.vocab_size))


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="n_tokens >= 3"):
        Copying(n_tokens=2)
    with pytest.raises(ValueError, match="one marker in each half"):
        Adding(l_seq=1)
    with pytest.raises(ValueError, match="Nyquist"):
        Delay(l_seq=100, l_lag=10, dt=0.01, freq=80.0)
    with pytest.raises(ValueError, match="must lie in"):
        Delay(l_seq=100, l_lag=60, n_lag=2)
    with pytest.raises(ValueError, match="n_tokens >= 4"):
        AssociativeRecall(n_tokens=3)


FAST = {  # experiment -> data overrides that make one step take well under a second
    "synthetic/copying": ["data.l_memorize=4", "data.n_tokens=10"],
    "synthetic/selective_copying": ["data.l_noise=20", "data.l_memorize=4"],
    "synthetic/adding": ["data.l_seq=20"],
    "synthetic/delay": ["data.l_seq=64", "data.l_lag=8", "data.dt=0.015625", "data.freq=8"],
    "synthetic/induction_heads": ["data.l_seq=10"],
    "synthetic/associative_recall": ["data.l_seq=10"],
}


@pytest.mark.parametrize("experiment", sorted(FAST))
def test_one_training_step_through_train(compose_train, capsys, experiment):
    cfg = compose_train(*TINY, f"experiment={experiment}", "debug=fdr", *FAST[experiment])
    train_checked(cfg)
    loss = re.search(r"test/(?:loss|mse) = (\S+),", capsys.readouterr().out)  # the test report
    assert loss is not None and math.isfinite(float(loss.group(1)))
