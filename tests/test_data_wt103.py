"""WikiText-103: vocabulary order, <eos> per line, the ordered LM iterator and its DDP sharding."""

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch.utils.data import DataLoader

from s4lab.data.base import MissingDataError
from s4lab.data.wt103 import LMOrderedIterator, WikiText103, build_vocab

TRAIN = [
    " \n",
    " = Valkyria Chronicles = \n",
    " \n",
    " Senjō no Valkyria 3 : <unk> Chronicles is a tactical role @-@ playing game . \n",
    " The game began development in 2010 , carrying over a large portion of the work . \n",
    " \n",
    " = = Gameplay = = \n",
    " \n",
    " The game is a tactical role @-@ playing game , and the work began in 2010 . \n",
]
VALID = [" \n", " = Gameplay = \n", " The game is a <unk> . \n"]
TEST = [" The work began . \n", " \n", " Senjō no game 3 : zebra \n"]  # "zebra" is OOV -> <unk>


def write_wikitext(folder: Path, names=("wiki.{}.tokens",)) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for split, lines in (("train", TRAIN), ("valid", VALID), ("test", TEST)):
        for name in names:
            (folder / name.format(split)).write_text("".join(lines), encoding="utf-8")


def setup_dm(folder: Path, **kwargs) -> WikiText103:
    dm = WikiText103(data_dir=str(folder), **kwargs)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def test_vocab_is_eos_then_descending_counts_ties_by_first_occurrence():
    vocab = build_vocab(["b a c", "a <eos> c d", "d"])
    assert vocab == ["<eos>", "a", "c", "d", "b"]  # a, c, d: 2 each in first-seen order; b: 1


def test_encoding_appends_eos_per_line_and_maps_oov_to_unk(tmp_path):
    write_wikitext(tmp_path / "wt103")
    dm = setup_dm(tmp_path / "wt103")
    vocab = dm.vocab
    assert vocab[0] == "<eos>" and vocab[1] == "="  # "=" is the most frequent train word
    assert dm.vocab_size == dm.d_input == dm.d_output == len(vocab)
    assert dm.data_train.dtype == torch.int64
    for tokens, lines in ((dm.data_train, TRAIN), (dm.data_val, VALID), (dm.data_test, TEST)):
        assert int((tokens == 0).sum()) == len(lines)  # one <eos> per line, blank lines included
        assert len(tokens) == sum(len(line.split()) + 1 for line in lines)
    first = [vocab[i] for i in dm.data_train[:8].tolist()]
    assert first == ["<eos>", "=", "Valkyria", "Chronicles", "=", "<eos>", "<eos>", "Senjō"]
    assert [vocab[i] for i in dm.data_test[-3:].tolist()] == [":", "<unk>", "<eos>"]


def test_oov_without_unk_in_train_is_an_error_naming_the_file(tmp_path):
    folder = tmp_path / "wt103"
    write_wikitext(folder)
    (folder / "wiki.train.tokens").write_text(" The game . \n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"wiki.valid.tokens: word '=' is not in the train vocab"):
        setup_dm(folder)


def test_transformer_xl_names_are_accepted(tmp_path):
    write_wikitext(tmp_path / "wt103", names=("{}.txt",))
    assert len(setup_dm(tmp_path / "wt103").data_val) == 1 + 4 + 7


def test_iterator_windows_are_ordered_non_overlapping_and_batch_major():
    tokens = torch.arange(103)
    it = LMOrderedIterator(tokens, batch_size=4, l_max=5)  # rows of T = 25 contiguous tokens
    batches = list(it)
    assert len(batches) == len(it) == 5  # ceil((25 - 1) / 5)
    assert [x.shape[1] for x, _ in batches] == [5, 5, 5, 5, 4]
    x0, y0 = batches[0]
    assert x0.tolist()[1] == [25, 26, 27, 28, 29] and x0.dtype == torch.int64
    assert torch.equal(y0, x0 + 1)  # target = input shifted by one
    x = torch.cat([x for x, _ in batches], dim=1)
    assert torch.equal(x, torch.arange(100).view(4, 25)[:, :-1])  # every row covered once, in order


def test_ddp_ranks_get_contiguous_slices_of_the_batch_dimension():
    tokens = torch.arange(1000)
    whole = list(LMOrderedIterator(tokens, batch_size=4, l_max=16))
    shards = [list(LMOrderedIterator(tokens, 2, 16, rank=r, world_size=2)) for r in range(2)]
    assert len(shards[0]) == len(shards[1]) == len(whole)
    for k, (x, y) in enumerate(whole):
        assert torch.equal(torch.cat([shards[0][k][0], shards[1][k][0]]), x)
        assert torch.equal(torch.cat([shards[0][k][1], shards[1][k][1]]), y)


def test_loaders_use_the_trainer_rank(tmp_path):
    write_wikitext(tmp_path / "wt103")
    dm = setup_dm(tmp_path / "wt103", batch_size=2, batch_size_eval=1, l_max=8)
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (2, 8) and y.shape == (2, 8) and x.dtype == y.dtype == torch.int64
    T = len(dm.data_train) // 4
    cpu = SimpleNamespace(root_device=torch.device("cpu"))
    dm.trainer = SimpleNamespace(global_rank=1, world_size=2, num_devices=2, strategy=cpu)
    x1, _ = next(iter(dm.train_dataloader()))
    assert torch.equal(x1, dm.data_train[: 4 * T].view(4, T)[2:4, :8])
    assert next(iter(dm.val_dataloader()))[0].shape == (1, 5)  # 12 tokens / 2 rows, minus 1


def test_cache_is_keyed_by_the_files(tmp_path):
    folder = tmp_path / "wt103"
    write_wikitext(folder)
    setup_dm(folder)
    assert len(list((folder / "cache").glob("wt103-*.pt"))) == 1
    setup_dm(folder)
    assert len(list((folder / "cache").glob("wt103-*.pt"))) == 1
    (folder / "wiki.test.tokens").write_text(" The game . \n", encoding="utf-8")
    assert len(setup_dm(folder).data_test) == 4
    assert len(list((folder / "cache").glob("wt103-*.pt"))) == 2


def test_missing_dataset_names_path_and_prepare_command(tmp_path):
    with pytest.raises(MissingDataError) as e:
        WikiText103(data_dir=str(tmp_path / "wt103")).prepare_data()
    assert str(tmp_path / "wt103" / "wiki.train.tokens") in str(e.value)
    assert "python scripts/prepare_data.py wt103" in str(e.value)


def test_non_utf8_file_is_named(tmp_path):
    write_wikitext(tmp_path / "wt103")
    (tmp_path / "wt103" / "wiki.valid.tokens").write_bytes(b"caf\xe9 \n")
    with pytest.raises(ValueError, match="wiki.valid.tokens: not UTF-8"):
        setup_dm(tmp_path / "wt103")


def test_too_few_tokens_for_the_batch_is_explained():
    with pytest.raises(ValueError, match="lower the batch size"):
        LMOrderedIterator(torch.arange(5), batch_size=4, l_max=2, rank=0, world_size=1)
    lazy = LMOrderedIterator(torch.arange(5), batch_size=4, l_max=2)  # rank decided at first use
    with pytest.raises(ValueError, match="lower the batch size"):
        len(lazy)


def test_without_a_trainer_the_rank_comes_from_torch_distributed(monkeypatch):
    it = LMOrderedIterator(torch.arange(100), batch_size=2, l_max=4)  # built before DDP starts
    monkeypatch.setattr("s4lab.data.wt103.distributed_rank", lambda: (1, 2))
    x, y = next(iter(it))
    assert torch.equal(x, torch.arange(100).view(4, 25)[2:4, :4])
    assert (it.rank, it.world_size) == (1, 2)


def test_worker_processes_keep_the_window_order():
    it = LMOrderedIterator(torch.arange(400), batch_size=2, l_max=7)
    serial = list(it)
    parallel = list(DataLoader(it, batch_size=None, num_workers=2))
    assert len(parallel) == len(serial)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(serial, parallel, strict=True))
