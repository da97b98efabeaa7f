"""LRA Text: IMDB movie-review sentiment at character level, read from the aclImdb v1 folders.

Layout: `<data_dir>/aclImdb/{train,test}/{neg,pos}/<id>_<rating>.txt` (the Stanford tarball;
`unsup/` and the bag-of-words files are ignored). Labels: neg = 0, pos = 1.
As the official S4 loader: one token per character (raw text, `<br />` kept); each review cut to
`l_max - 1` characters, then `<eos>`; vocabulary from the cut train reviews with `min_freq` 15
(~135 ids with `<pad>, <unk>, <eos>`); no validation split: the test set doubles as validation,
as in LRA.
Deviations: reads the local folders instead of the HF hub copy; files in sorted name order.
"""

from __future__ import annotations

from pathlib import Path

from s4lab.data.base import require
from s4lab.data.tokens import EncodedSplit, TokenDataModule, Vocab, char_counts, pad_batch

PREPARE = "python scripts/prepare_data.py imdb"
LABELS = {"neg": 0, "pos": 1}


def review_files(root: Path, split: str) -> list[tuple[Path, int]]:
    """Sorted (file, label) pairs of `root/aclImdb/<split>/{neg,pos}`; errors name the folder."""
    pairs = []
    for name, label in LABELS.items():
        folder = require(root / "aclImdb" / split / name, prepare=PREPARE)
        files = sorted(folder.glob("*.txt"))
        if not files:
            raise ValueError(f"{folder}: no <id>_<rating>.txt reviews (incomplete extraction?)")
        pairs += [(f, label) for f in files]
    return pairs


def read_review(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text, the file is corrupt ({e})") from e


class IMDB(TokenDataModule):
    """LRA Text datamodule: char tokens, d_output = 2; `data_val` is the test set."""

    cache_name = "imdb"

    def __init__(
        self,
        data_dir: str,
        batch_size: int = 16,
        batch_size_eval: int | None = None,
        num_workers: int | None = None,
        seed: int = 42,
        track_test: bool = False,
        l_max: int = 4096,
        min_freq: int = 15,
        append_eos: bool = True,
    ) -> None:
        super().__init__(data_dir, batch_size, batch_size_eval, num_workers, seed, track_test)
        self.l_max = l_max
        self.min_freq = min_freq
        self.append_eos = append_eos
        self.d_output = 2
        self.collate_fn = pad_batch

    def _sources(self) -> tuple[dict[str, list[tuple[Path, int]]], list[Path]]:
        files = {s: review_files(self.data_dir, s) for s in ("train", "test")}
        return files, [f for pairs in files.values() for f, _ in pairs]

    def _cache_config(self) -> dict:
        config = {"l_max": self.l_max, "min_freq": self.min_freq, "append_eos": self.append_eos}
        return config | {"version": 2}  # 2: vocabulary counted over truncated texts

    def _build(self, files: dict[str, list[tuple[Path, int]]]) -> dict:
        keep = self.l_max - 1 if self.append_eos else self.l_max  # S4 counts truncated texts
        texts = {s: [read_review(f)[:keep] for f, _ in pairs] for s, pairs in files.items()}
        vocab = Vocab.build(char_counts(texts["train"]), self.min_freq)
        splits = {
            s: EncodedSplit.from_arrays(
                [vocab.encode_chars(t, self.l_max, self.append_eos) for t in texts[s]],
                [label for _, label in files[s]],
            )
            for s in files
        }
        return {"vocab": vocab.itos, "splits": splits}
