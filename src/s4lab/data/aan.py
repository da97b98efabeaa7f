"""LRA Retrieval: do two ACL Anthology papers cite each other? Two char-level documents per example.

Layout: `<data_dir>/new_aan_pairs.{train,eval,test}.tsv` (LRA release `tsv_data/`), no header,
5 tab-separated columns `label  id1  id2  text1  text2`, label written `0`, `1` or `1.0`.
Quotes are literal (LRA reads with `use_quote_delim=False`): a `"` inside a text never starts a
quoted field, so we split each line on tabs only. Vocabulary: characters of text1 + text2 over
train, counted after truncation as S4 does (~98 + specials); each document truncated to
`l_max - 1` (l_max 4000 per document) plus `<eos>`.
Batches: x (B, 2, L) int64 with both documents padded to one L, y (B,), lengths (B, 2).
Deviations from S4: S4 collates the pair as (2B, L) and reads with the HF csv reader (default
quoting, which mis-splits texts with `"`); `eval` is the validation split as in S4.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from s4lab.data.base import require
from s4lab.data.tokens import EncodedSplit, TokenDataModule, Vocab, char_counts, pad_pair_batch

PREPARE = "python scripts/prepare_data.py aan"
SPLITS = {
    "train": "new_aan_pairs.train.tsv",
    "val": "new_aan_pairs.eval.tsv",
    "test": "new_aan_pairs.test.tsv",
}


def read_tsv(path: Path, max_chars: int | None = None) -> tuple[list[tuple[str, str]], list[int]]:
    """(text pairs, labels) of one AAN tsv, texts cut to `max_chars`; errors name file and line.

    Lines end at `\n` only (a stray `\r` inside a text stays text); tabs are the only separator.
    """
    pairs, labels = [], []
    with open(path, "rb") as f:
        for n, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ValueError(f"{path}:{n}: not UTF-8 text, the file is corrupt ({e})") from e
            cols = line.removesuffix("\n").removesuffix("\r").split("\t")
            if len(cols) != 5:
                raise ValueError(
                    f"{path}:{n}: expected 5 tab-separated columns (label, id1, id2, text1, text2),"
                    f" got {len(cols)} (truncated or corrupt file?)"
                )
            try:
                label = float(cols[0])
            except ValueError:
                label = -1.0
            if label not in (0.0, 1.0):
                got = cols[0][:20]
                raise ValueError(f"{path}:{n}: expected a label 0 or 1 (or 1.0), got {got!r}")
            pairs.append((cols[3][:max_chars], cols[4][:max_chars]))
            labels.append(int(label))
    if not pairs:
        raise ValueError(f"{path}: no examples (empty or truncated file)")
    return pairs, labels


class AAN(TokenDataModule):
    """LRA Retrieval datamodule: x (B, 2, L) char ids, d_output = 2; l_max is per document."""

    cache_name = "aan"

    def __init__(
        self,
        data_dir: str,
        batch_size: int = 64,
        batch_size_eval: int | None = None,
        num_workers: int | None = None,
        seed: int = 42,
        track_test: bool = False,
        l_max: int = 4000,
        min_freq: int = 1,
        append_eos: bool = True,
    ) -> None:
        super().__init__(data_dir, batch_size, batch_size_eval, num_workers, seed, track_test)
        self.l_max = l_max
        self.min_freq = min_freq
        self.append_eos = append_eos
        self.d_output = 2
        self.collate_fn = pad_pair_batch

    def _sources(self) -> tuple[dict[str, Path], list[Path]]:
        paths = {s: require(self.data_dir / f, prepare=PREPARE) for s, f in SPLITS.items()}
        return paths, list(paths.values())

    def _cache_config(self) -> dict:
        config = {"l_max": self.l_max, "min_freq": self.min_freq, "append_eos": self.append_eos}
        return config | {"version": 2}  # 2: vocabulary counted over truncated texts

    def _build(self, paths: dict[str, Path]) -> dict:
        keep = self.l_max - 1 if self.append_eos else self.l_max  # chars kept per document
        tables = {s: read_tsv(p, max_chars=keep) for s, p in paths.items()}
        counts: Counter[str] = char_counts(t for pair in tables["train"][0] for t in pair)
        vocab = Vocab.build(counts, self.min_freq)
        splits = {
            s: EncodedSplit.from_arrays(
                [vocab.encode_chars(t, self.l_max, self.append_eos) for p in pairs for t in p],
                labels,
                docs_per_example=2,
            )
            for s, (pairs, labels) in tables.items()
        }
        return {"vocab": vocab.itos, "splits": splits}
