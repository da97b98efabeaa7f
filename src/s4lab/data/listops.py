"""LRA ListOps: nested MAX/MIN/MED/SUM_MOD expressions, 10 classes, from the released tsv files.

Layout: `<data_dir>/basic_{train,val,test}.tsv`, header `Source\\tTarget`, one expression per row
(`( ( ( [MAX 2 ) 9 ) ] )` -> 9): the LRA release, or `prepare_data.py listops --generate`.
Tokenization as LRA and the official S4 loader: `]` -> `X`, drop `(` and `)`, split on whitespace
(15 symbols + `<pad>, <unk>, <eos>` = 18 ids); vocabulary from the train file as S4 (LRA's own
code builds it from the validation file and pads to 2000); `<eos>` appended after truncation to
`l_max - 1`; batches `(x (B, L) int64, y (B,), lengths (B,))`, padded per batch with `<pad>` = 0.
Deviation from S4: no torchtext / HF datasets; the cache is one torch file per config and sources.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from s4lab.data.base import require
from s4lab.data.tokens import EncodedSplit, TokenDataModule, Vocab, pad_batch

PREPARE = "python scripts/prepare_data.py listops  (or add --generate to build it offline)"
HEADER = ["Source", "Target"]
DIGITS = frozenset("0123456789")
SPLITS = {"train": "basic_train.tsv", "val": "basic_val.tsv", "test": "basic_test.tsv"}


def tokenize(source: str) -> list[str]:
    """LRA ListOps tokens: `]` -> `X`, parentheses removed, whitespace split."""
    return source.translate({ord("]"): "X", ord("("): None, ord(")"): None}).split()


def read_tsv(path: Path) -> tuple[list[str], list[int]]:
    """(sources, targets) of one ListOps tsv; errors name the file, line and what was expected."""
    sources, targets = [], []
    with open(path, "rb") as f:
        for n, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as e:
                raise ValueError(f"{path}:{n}: not UTF-8 text, the file is corrupt ({e})") from e
            cols = line.split("\t")
            if n == 1:
                if cols != HEADER:
                    got = line[:60]
                    raise ValueError(
                        f"{path}: expected the header line 'Source\\tTarget', got {got!r}"
                    )
                continue
            if len(cols) != 2:
                raise ValueError(
                    f"{path}:{n}: expected 2 tab-separated columns (Source, Target),"
                    f" got {len(cols)} (truncated or corrupt file?)"
                )
            if cols[1] not in DIGITS:
                raise ValueError(f"{path}:{n}: expected a Target digit 0-9, got {cols[1][:20]!r}")
            sources.append(cols[0])
            targets.append(int(cols[1]))
    if not sources:
        raise ValueError(
            f"{path}: no examples (empty or truncated file);"
            " expected a 'Source\\tTarget' header and rows"
        )
    return sources, targets


class ListOps(TokenDataModule):
    """LRA ListOps datamodule: d_input = vocab_size = 18 on the real data, d_output = 10."""

    cache_name = "listops"

    def __init__(
        self,
        data_dir: str,
        batch_size: int = 50,
        batch_size_eval: int | None = None,
        num_workers: int | None = None,
        seed: int = 42,
        track_test: bool = False,
        l_max: int = 2048,
        append_eos: bool = True,
    ) -> None:
        super().__init__(data_dir, batch_size, batch_size_eval, num_workers, seed, track_test)
        self.l_max = l_max
        self.append_eos = append_eos
        self.d_output = 10
        self.collate_fn = pad_batch

    def _sources(self) -> tuple[dict[str, Path], list[Path]]:
        paths = {s: require(self.data_dir / f, prepare=PREPARE) for s, f in SPLITS.items()}
        return paths, list(paths.values())

    def _cache_config(self) -> dict:
        return {"l_max": self.l_max, "append_eos": self.append_eos, "version": 1}

    def _build(self, paths: dict[str, Path]) -> dict:
        tables = {s: read_tsv(p) for s, p in paths.items()}
        counts = Counter(t for src in tables["train"][0] for t in tokenize(src))
        vocab = Vocab.build(counts)
        splits = {
            s: EncodedSplit.from_arrays(
                [vocab.encode(tokenize(src), self.l_max, self.append_eos) for src in sources],
                targets,
            )
            for s, (sources, targets) in tables.items()
        }
        return {"vocab": vocab.itos, "splits": splits}
