"""LRA ListOps, Text (IMDB) and Retrieval (AAN) datamodules on tiny fixtures, published formats."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import TINY, train_checked
from pytorch_lightning import Callback

from s4lab.data.aan import AAN
from s4lab.data.base import MissingDataError
from s4lab.data.imdb import IMDB
from s4lab.data.listops import ListOps, tokenize

LISTOPS_ROWS = [
    ("( ( ( [MAX 2 ) 9 ) ] )", 9),
    ("( ( ( ( [MIN 4 ) ( ( ( [SM 3 ) 8 ) ] ) ) 7 ) ] )", 1),
    ("( ( ( ( [MED 1 ) 5 ) 2 ) ] )", 2),
    ("( ( ( ( [SM 9 ) 9 ) 4 ) ] )", 2),
    ("( ( ( ( [MED 1 ) 2 ) ( ( ( [MAX 0 ) 6 ) ] ) ) ] )", 1),
]


def write_listops(root: Path, rows=LISTOPS_ROWS, newline: str = "\r\n") -> Path:
    """`root/listops/basic_{train,val,test}.tsv` with the `Source\\tTarget` header."""
    folder = root / "listops"
    folder.mkdir(parents=True, exist_ok=True)
    for split in ("train", "val", "test"):
        lines = ["Source\tTarget", *(f"{s}\t{t}" for s, t in rows)]
        (folder / f"basic_{split}.tsv").write_text(newline.join(lines) + newline, newline="")
    return folder


REVIEWS = {
    # '<br />' tags and non-ASCII characters, as in the real files; 'é' and '☺' are rare chars
    "train/pos/0_9.txt": "A great film.<br /><br />Loved it: café ☺",
    "train/pos/1_7.txt": "great great film",
    "train/neg/0_2.txt": "A bad film.<br />Boring.",
    "train/neg/1_1.txt": "bad bad bad film",
    "test/pos/0_10.txt": "great",
    "test/neg/0_3.txt": "bad, not great" + "x" * 50,
}


def write_imdb(root: Path) -> Path:
    """`root/imdb/aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt`, plus an ignored unsup/."""
    folder = root / "imdb"
    for rel, text in {**REVIEWS, "train/unsup/0_0.txt": "unlabelled ☃☃☃"}.items():
        path = folder / "aclImdb" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return folder


AAN_ROWS = {
    "train": [
        ("1", 'he said "no', "ab"),  # a lone quote: must stay literal, not open a quoted field
        ("0.0", "abc", 'x"y"z'),
        ("1.0", "cab", "bca"),
    ],
    "eval": [("0", "a", "b"), ("1.0", "ab", "ba")],
    "test": [("1", "aaaa", "b"), ("0", "c", "cc")],
}


def write_aan(root: Path, rows=AAN_ROWS) -> Path:
    """`root/aan/new_aan_pairs.{train,eval,test}.tsv`: no header, label id1 id2 text1 text2."""
    folder = root / "aan"
    folder.mkdir(parents=True, exist_ok=True)
    for split, examples in rows.items():
        lines = [f"{lab}\tid{i}a\tid{i}b\t{t1}\t{t2}\n" for i, (lab, t1, t2) in enumerate(examples)]
        (folder / f"new_aan_pairs.{split}.tsv").write_text("".join(lines), encoding="utf-8")
    return folder


def first_batch(dm, split: str = "train"):
    dm.batch_size = dm.batch_size_eval = 64  # the whole fixture split in one batch
    loader = getattr(dm, f"{split}_dataloader")()
    return next(iter(loader))


# ListOps


def test_listops_tokenizer_matches_lra():
    assert tokenize("( ( ( [MAX 2 ) 9 ) ] )") == ["[MAX", "2", "9", "X"]


def test_listops_batches(tmp_path):
    dm = ListOps(str(write_listops(tmp_path)), l_max=2048)
    dm.setup("fit")
    symbols = {"[MAX", "[MIN", "[MED", "[SM", "X", *map(str, range(10))}
    assert dm.vocab.itos[:3] == ["<pad>", "<unk>", "<eos>"]
    assert set(dm.vocab.itos[3:]) == symbols  # 15 symbols -> 18 ids, as on the real data
    assert dm.vocab_size == dm.d_input == 18 and dm.d_output == 10 and dm.l_max == 2048
    x, y, lengths = first_batch(dm, "val")  # val: sequential order
    assert x.dtype == y.dtype == lengths.dtype == torch.int64
    assert x.shape == (5, int(lengths.max()))
    assert y.tolist() == [t for _, t in LISTOPS_ROWS]
    expected = [len(tokenize(s)) + 1 for s, _ in LISTOPS_ROWS]  # + <eos>
    assert lengths.tolist() == expected
    for row, n in zip(x, expected, strict=True):
        assert row[n - 1] == dm.vocab.eos and (row[n:] == 0).all()
    decoded = [dm.vocab.itos[i] for i in x[0, : expected[0] - 1]]
    assert decoded == tokenize(LISTOPS_ROWS[0][0])  # tokens round-trip


def test_listops_vocab_order_is_frequency_then_lexicographic(tmp_path):
    dm = ListOps(str(write_listops(tmp_path)))
    dm.setup("fit")
    counts = {}
    for s, _ in LISTOPS_ROWS:
        for t in tokenize(s):
            counts[t] = counts.get(t, 0) + 1
    assert dm.vocab.itos[3:] == sorted(counts, key=lambda t: (-counts[t], t))


def test_listops_truncates_to_l_max_with_eos(tmp_path):
    dm = ListOps(str(write_listops(tmp_path)), l_max=4)
    dm.setup("fit")
    x, _, lengths = first_batch(dm, "val")
    assert x.shape[1] == 4 and lengths.max() == 4
    assert (x[lengths == 4, 3] == dm.vocab.eos).all()


def test_listops_cache_is_reused_and_rebuilt_on_change(tmp_path):
    folder = write_listops(tmp_path)
    ListOps(str(folder)).setup("fit")
    assert len(list((folder / "cache").glob("listops-*.pt"))) == 1
    ListOps(str(folder)).setup("fit")
    assert len(list((folder / "cache").glob("listops-*.pt"))) == 1
    write_listops(tmp_path, LISTOPS_ROWS[:3])
    dm = ListOps(str(folder))
    dm.setup("fit")
    assert len(list((folder / "cache").glob("listops-*.pt"))) == 2
    assert len(dm.data_train) == 3


def test_listops_missing_names_path_and_command(tmp_path):
    with pytest.raises(MissingDataError, match=r"basic_train\.tsv[\s\S]*prepare_data\.py listops"):
        ListOps(str(tmp_path / "listops")).setup("fit")


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("( [MAX 2 ] )\t2\n", r"basic_val\.tsv: expected the header line 'Source\\tTarget'"),
        ("Source\tTarget\n( [MAX 2 ] )\t2\t7\n", r"basic_val\.tsv:2: expected 2 tab-separated"),
        ("Source\tTarget\n( ( ( [MAX 2 ) 9", r"basic_val\.tsv:2: expected 2 .*truncated"),
        ("Source\tTarget\n( [MAX 2 ] )\tten\n", r"basic_val\.tsv:2: expected a Target digit"),
        ("", r"basic_val\.tsv: no examples \(empty"),
        ("Source\tTarget\n", r"basic_val\.tsv: no examples"),
    ],
)
def test_listops_bad_file_says_what_was_expected(tmp_path, content, match):
    folder = write_listops(tmp_path)
    (folder / "basic_val.tsv").write_text(content)
    with pytest.raises(ValueError, match=match):
        ListOps(str(folder)).setup("fit")


def test_listops_corrupt_bytes_name_the_file(tmp_path):
    folder = write_listops(tmp_path)
    (folder / "basic_test.tsv").write_bytes(b"Source\tTarget\n\xff\xfe\x00\x01\t3\n")
    with pytest.raises(ValueError, match=r"basic_test\.tsv:2: not UTF-8"):
        ListOps(str(folder)).setup("fit")


# IMDB


def test_imdb_char_vocab_min_freq_and_test_as_val(tmp_path):
    dm = IMDB(str(write_imdb(tmp_path)), l_max=32, min_freq=2)
    dm.setup("fit")
    train_text = "".join(v[:31] for k, v in REVIEWS.items() if k.startswith("train"))  # cut first
    kept = {c for c in set(train_text) if train_text.count(c) >= 2}
    assert set(dm.vocab.itos[3:]) == kept and "☺" not in kept and "☃" not in dm.vocab.stoi
    assert dm.vocab_size == dm.d_input == len(kept) + 3 and dm.d_output == 2
    assert dm.data_val is dm.data_test and len(dm.data_train) == 4 and len(dm.data_test) == 2
    x, y, lengths = first_batch(dm, "train")
    assert x.dtype == torch.int64 and x.shape == (4, int(lengths.max()))
    assert sorted(y.tolist()) == [0, 0, 1, 1]


def test_imdb_labels_unk_truncation_and_eos(tmp_path):
    dm = IMDB(str(write_imdb(tmp_path)), l_max=32, min_freq=2)
    dm.setup("fit")
    x, y, lengths = first_batch(dm, "test")  # sorted order: neg/0_3.txt, pos/0_10.txt
    assert y.tolist() == [0, 1]
    assert lengths.tolist() == [32, len("great") + 1]  # 64 chars truncated to 31 + <eos>
    assert x[0, 31] == dm.vocab.eos and x[1, 5] == dm.vocab.eos
    assert "".join(dm.vocab.itos[i] for i in x[1, :5]) == "great"
    ids = dm.vocab.encode_chars("é☺g", l_max=8)
    assert ids.tolist() == [dm.vocab.unk, dm.vocab.unk, dm.vocab.stoi["g"], dm.vocab.eos]


def test_imdb_corrupt_review_is_named(tmp_path):
    folder = write_imdb(tmp_path)
    (folder / "aclImdb/train/neg/1_1.txt").write_bytes(b"bad \xff\xfe bytes")
    with pytest.raises(ValueError, match=r"train/neg/1_1\.txt: not UTF-8"):
        IMDB(str(folder)).setup("fit")


def test_imdb_missing_folder_names_path_and_command(tmp_path):
    with pytest.raises(MissingDataError, match=r"aclImdb/train/neg[\s\S]*prepare_data\.py imdb"):
        IMDB(str(tmp_path / "imdb")).setup("fit")


def test_imdb_empty_class_folder_is_named(tmp_path):
    folder = write_imdb(tmp_path)
    for f in (folder / "aclImdb/test/pos").iterdir():
        f.unlink()
    with pytest.raises(ValueError, match=r"aclImdb/test/pos: no <id>_<rating>\.txt"):
        IMDB(str(folder)).setup("fit")


# AAN


def test_aan_pairs_quotes_and_labels(tmp_path):
    dm = AAN(str(write_aan(tmp_path)), l_max=6)
    dm.setup("fit")
    assert dm.vocab_size == dm.d_input and dm.d_output == 2 and dm.l_max == 6
    assert '"' in dm.vocab.stoi  # the quote is an ordinary character
    x, y, lengths = first_batch(dm, "train")
    assert x.dtype == torch.int64 and x.shape == (3, 2, 6) and lengths.shape == (3, 2)
    x, y, lengths = dm.collate_fn([dm.data_train[i] for i in range(3)])  # file order
    assert y.tolist() == [1, 0, 1]  # from '1', '0.0', '1.0'
    assert lengths.tolist() == [[6, 3], [4, 6], [4, 4]]  # 'he said "no' truncated to 5 + <eos>
    assert "".join(dm.vocab.itos[i] for i in x[1, 1, :5]) == 'x"y"z'
    assert x[1, 1, 5] == dm.vocab.eos and (x[1, 0, 4:] == 0).all()
    assert len(dm.data_val) == 2 and len(dm.data_test) == 2


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ("1\tid1\tid2\tonly four\n", r"eval\.tsv:1: expected 5 tab-separated columns"),
        ("yes\tid1\tid2\ta\tb\n", r"eval\.tsv:1: expected a label 0 or 1"),
        ("", r"eval\.tsv: no examples"),
    ],
)
def test_aan_bad_file_says_what_was_expected(tmp_path, line, match):
    folder = write_aan(tmp_path)
    (folder / "new_aan_pairs.eval.tsv").write_text(line)
    with pytest.raises(ValueError, match=match):
        AAN(str(folder)).setup("fit")


def test_aan_corrupt_line_is_named(tmp_path):
    folder = write_aan(tmp_path)
    with open(folder / "new_aan_pairs.test.tsv", "ab") as f:
        f.write(b"1\tid9a\tid9b\t\xff\xfe\tb\n")
    with pytest.raises(ValueError, match=r"new_aan_pairs\.test\.tsv:3: not UTF-8"):
        AAN(str(folder)).setup("fit")


def test_aan_missing_names_path_and_command(tmp_path):
    with pytest.raises(
        MissingDataError, match=r"new_aan_pairs\.train\.tsv[\s\S]*prepare_data\.py aan"
    ):
        AAN(str(tmp_path / "aan")).setup("fit")


# Training through train(cfg) per experiment, on the fixtures above


class TrainLosses(Callback):
    """The training loss of every step."""

    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.losses.append(float(outputs["loss"]))


@pytest.mark.parametrize(
    ("experiment", "write"),
    [("lra/listops", write_listops), ("lra/imdb", write_imdb), ("lra/aan", write_aan)],
)
def test_experiment_fits_its_fixture(compose_train, tmp_path, experiment, write):
    """The recipe's model (tiny, constant lr) fits the whole training fixture in one batch:
    the loss falls to a quarter of its first value within 40 steps."""
    write(tmp_path / "data")
    cfg = compose_train(
        *TINY,
        f"experiment={experiment}",
        f"paths.data_dir={tmp_path / 'data'}",
        "trainer.max_epochs=40",
        "trainer.num_sanity_val_steps=0",
        "trainer.check_val_every_n_epoch=40",  # validate once, at the end
        "test=false",
        "data.batch_size=8",  # every training example in one batch
        "data.batch_size_eval=8",
        "model.d_model=16",
        "model.dropout=0",
        "optimizer.lr=0.01",
        "optimizer.weight_decay=0",
        "~scheduler",  # the recipes warm up over thousands of steps
        "callbacks.model_checkpoint=null",
        "callbacks.last_checkpoint=null",
    )
    record = TrainLosses()
    train_checked(cfg, callbacks=[record])
    assert len(record.losses) == 40
    assert min(record.losses[-5:]) < 0.25 * record.losses[0], record.losses
