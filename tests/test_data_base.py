"""What every datamodule shares: sizes after setup() of any stage, [val, test] loaders when the
test split is tracked, the worker rule, and the prepare_data / setup split of the cache (< 2 s)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from test_data_lra_text import write_imdb, write_listops

from s4lab.data import base, mnist1d
from s4lab.data.base import DataSizes, default_num_workers
from s4lab.data.imdb import IMDB
from s4lab.data.listops import ListOps
from s4lab.data.mnist1d import MNIST1D


@pytest.fixture
def mnist1d_dir(data_dir: Path) -> Path:
    """MNIST-1D's folder in the session's data root (generated once, then cached)."""
    MNIST1D(str(data_dir / "mnist1d")).prepare_data()
    return data_dir / "mnist1d"


@pytest.mark.parametrize("stage", ["fit", "test"])
def test_sizes_after_setup_of_either_stage(tmp_path, stage):
    dm = ListOps(str(write_listops(tmp_path)), l_max=64)
    with pytest.raises(RuntimeError, match=r"ListOps.sizes: d_input unknown before setup\(\)"):
        _ = dm.sizes
    dm.prepare_data()
    dm.setup(stage)
    assert dm.sizes == DataSizes(d_input=18, d_output=10, l_max=64, vocab_size=18)
    with pytest.raises(dataclasses.FrozenInstanceError):
        dm.sizes.d_input = 3


def test_continuous_sizes_have_no_vocabulary(mnist1d_dir):
    dm = MNIST1D(str(mnist1d_dir))
    dm.setup("test")
    assert dm.sizes == DataSizes(d_input=1, d_output=10, l_max=40, vocab_size=None)


def test_setup_loads_what_prepare_data_built(mnist1d_dir, monkeypatch):
    """prepare_data (once per node) generates; setup (every rank) only reads the cache."""

    def no_generation(*args, **kwargs):
        raise AssertionError("setup() generated the data instead of loading the cache")

    monkeypatch.setattr(mnist1d, "make_mnist1d", no_generation)
    dm = MNIST1D(str(mnist1d_dir))
    dm.setup("fit")
    assert len(dm.data_train) == 3600


def test_val_loaders_track_the_test_split(mnist1d_dir):
    dm = MNIST1D(str(mnist1d_dir), track_test=True)
    dm.setup("fit")
    val, test = dm.val_dataloader()
    assert val.dataset is dm.data_val and test.dataset is dm.data_test
    untracked = MNIST1D(str(mnist1d_dir), track_test=False)
    untracked.setup("fit")
    assert untracked.val_dataloader().dataset is untracked.data_val


def test_a_test_split_that_is_the_val_split_is_not_evaluated_twice(tmp_path):
    dm = IMDB(str(write_imdb(tmp_path)), l_max=32, track_test=True)  # LRA Text: val = test
    dm.setup("fit")
    assert dm.val_dataloader().dataset is dm.data_test


def test_worker_rule(monkeypatch):
    monkeypatch.setattr(base, "usable_cpus", lambda: 16)
    assert default_num_workers(on_cuda=False) == 0  # the model needs the cores
    assert default_num_workers(on_cuda=True) == 8  # capped
    assert default_num_workers(on_cuda=True, processes_per_node=4) == 3  # 16 // 4 - 1
    monkeypatch.setattr(base, "usable_cpus", lambda: 1)
    assert default_num_workers(on_cuda=True) == 0


def test_loaders_pin_memory_and_keep_workers_on_cuda(mnist1d_dir, monkeypatch):
    monkeypatch.setattr(base, "usable_cpus", lambda: 4)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # no trainer: asks torch
    dm = MNIST1D(str(mnist1d_dir))
    dm.setup("fit")
    loader = dm.train_dataloader()
    assert (loader.num_workers, loader.pin_memory, loader.persistent_workers) == (3, True, True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    loader = dm.train_dataloader()
    assert (loader.num_workers, loader.pin_memory, loader.persistent_workers) == (0, False, False)
    forced = MNIST1D(str(mnist1d_dir), num_workers=2)
    forced.setup("fit")
    assert forced.train_dataloader().num_workers == 2
    with pytest.raises(ValueError, match="num_workers=-1"):
        MNIST1D(str(mnist1d_dir), num_workers=-1)
