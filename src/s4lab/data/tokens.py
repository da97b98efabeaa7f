"""Token sequences for the LRA text tasks: vocabulary, encoding, storage and padded batches.

Vocabulary order (as torchtext's `build_vocab_from_iterator`, used by the official loaders):
specials first (`<pad>`=0, `<unk>`=1, `<eos>`=2), then tokens by descending train frequency, ties
broken lexicographically; tokens seen fewer than `min_freq` times map to `<unk>`.
Encoding: truncate to `l_max - 1` tokens, then append `<eos>`, so every sequence has <= l_max ids.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from s4lab.data.base import SequenceDataModule
from s4lab.data.cache import cached, prepare_cache

PAD, UNK, EOS = "<pad>", "<unk>", "<eos>"
SPECIALS = (PAD, UNK, EOS)


class Vocab:
    """Token <-> id map; unknown tokens map to `<unk>`; id 0 is `<pad>`."""

    def __init__(self, itos: Sequence[str]) -> None:
        self.itos = list(itos)
        self.stoi = {t: i for i, t in enumerate(self.itos)}
        self.pad, self.unk, self.eos = (self.stoi[s] for s in SPECIALS)

    @classmethod
    def build(cls, counts: Counter[str], min_freq: int = 1) -> Vocab:
        """Specials, then tokens with count >= min_freq by (-count, token)."""
        kept = sorted((t for t, c in counts.items() if c >= min_freq and t not in SPECIALS))
        kept.sort(key=lambda t: -counts[t])  # stable: equal counts stay lexicographic
        return cls([*SPECIALS, *kept])

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, tokens: Iterable[str], l_max: int, append_eos: bool = True) -> np.ndarray:
        """Ids of `tokens`, truncated to l_max - 1 (+ `<eos>`) or l_max (no `<eos>`)."""
        ids = [self.stoi.get(t, self.unk) for t in tokens]
        return self._finish(np.asarray(ids, dtype=np.int64), l_max, append_eos)

    def encode_chars(self, text: str, l_max: int, append_eos: bool = True) -> np.ndarray:
        """Char-level `encode`, vectorized over the string's code points."""
        keys, values = self._char_table()
        cps = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        cps = cps[: l_max - 1 if append_eos else l_max]
        pos = np.minimum(np.searchsorted(keys, cps), len(keys) - 1)
        ids = np.where(keys[pos] == cps, values[pos], self.unk)
        return self._finish(ids.astype(np.int64), l_max, append_eos)

    def _char_table(self) -> tuple[np.ndarray, np.ndarray]:
        if not hasattr(self, "_table"):
            chars = sorted((ord(t), i) for i, t in enumerate(self.itos) if len(t) == 1)
            keys = np.array([c for c, _ in chars] or [0xFFFFFFFF], dtype=np.uint32)
            values = np.array([i for _, i in chars] or [self.unk], dtype=np.int64)
            self._table = (keys, values)
        return self._table

    def _finish(self, ids: np.ndarray, l_max: int, append_eos: bool) -> np.ndarray:
        if not append_eos:
            return ids[:l_max]
        return np.append(ids[: l_max - 1], self.eos)

    def __getstate__(self) -> dict:
        return {"itos": self.itos}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["itos"])


def char_counts(texts: Iterable[str]) -> Counter[str]:
    """Character frequencies over `texts` (vectorized per text)."""
    total: Counter[str] = Counter()
    for text in texts:
        cps, n = np.unique(np.frombuffer(text.encode("utf-32-le"), np.uint32), return_counts=True)
        total.update(dict(zip(map(chr, cps.tolist()), n.tolist(), strict=True)))
    return total


@dataclass
class EncodedSplit:
    """`k` documents per example stored flat: document j of example i is row i * k + j.

    tokens: (T,) int16 concatenated ids; offsets: (N * k + 1,) int64; labels: (N,) int64.
    """

    tokens: Tensor
    offsets: Tensor
    labels: Tensor
    docs_per_example: int = 1

    @classmethod
    def from_arrays(
        cls, docs: Sequence[np.ndarray], labels: Sequence[int], docs_per_example: int = 1
    ) -> EncodedSplit:
        lengths = np.array([len(d) for d in docs], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        flat = np.concatenate(docs) if docs else np.zeros(0, dtype=np.int64)
        if flat.size and flat.max() > np.iinfo(np.int16).max:
            raise ValueError(f"token id {flat.max()} does not fit the int16 storage (max 32767)")
        return cls(
            tokens=torch.from_numpy(flat.astype(np.int16)),  # vocabularies here are < 32768
            offsets=torch.from_numpy(offsets),
            labels=torch.as_tensor(list(labels), dtype=torch.int64),
            docs_per_example=docs_per_example,
        )

    def __len__(self) -> int:
        return len(self.labels)

    def doc(self, row: int) -> Tensor:
        return self.tokens[self.offsets[row] : self.offsets[row + 1]].long()


class TokenDataset(Dataset):
    """Examples of an `EncodedSplit`: (ids (L,), label), or ([ids1, ids2], label) for pairs."""

    def __init__(self, split: EncodedSplit) -> None:
        self.split = split

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, i: int) -> tuple[Tensor | list[Tensor], Tensor]:
        k = self.split.docs_per_example
        docs = [self.split.doc(i * k + j) for j in range(k)]
        return (docs[0] if k == 1 else docs), self.split.labels[i]


def pad_batch(examples: list[tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor, Tensor]:
    """Pad to the longest sequence with `<pad>` = 0 -> x (B, L) int64, y (B,), lengths (B,)."""
    docs, labels = zip(*examples, strict=True)
    lengths = torch.tensor([len(d) for d in docs], dtype=torch.int64)
    x = torch.zeros(len(docs), int(lengths.max()), dtype=torch.int64)  # (B, L)
    for i, d in enumerate(docs):
        x[i, : len(d)] = d
    return x, torch.stack(labels), lengths


def pad_pair_batch(examples: list[tuple[list[Tensor], Tensor]]) -> tuple[Tensor, Tensor, Tensor]:
    """Pad both documents to one common L -> x (B, 2, L) int64, y (B,), lengths (B, 2)."""
    pairs, labels = zip(*examples, strict=True)
    lengths = torch.tensor([[len(d) for d in p] for p in pairs], dtype=torch.int64)  # (B, 2)
    x = torch.zeros(len(pairs), 2, int(lengths.max()), dtype=torch.int64)  # (B, 2, L)
    for i, pair in enumerate(pairs):
        for j, d in enumerate(pair):
            x[i, j, : len(d)] = d
    return x, torch.stack(labels), lengths


class TokenDataModule(SequenceDataModule):
    """A tokenized dataset built once into the cache: vocabulary from train, encoded splits.

    Subclasses give `cache_name`, `_sources()` -> (what `_build` reads, the files the cache is
    keyed on), `_cache_config()`, and `_build(inputs)` -> {"vocab": itos, "splits": {name:
    EncodedSplit}}. A dataset without a "val" split validates on "test" (LRA Text does).
    `prepare_data()` builds the cache entry (once per node); `setup()` loads it on every rank.
    """

    cache_name: str
    vocab: Vocab | None = None

    def _cache_args(self) -> dict:
        """Arguments of `cached` / `prepare_cache`; finding the sources checks they exist."""
        inputs, files = self._sources()
        return {
            "build": lambda: self._build(inputs),
            "cache_dir": self.data_dir / "cache",
            "name": self.cache_name,
            "config": self._cache_config(),
            "sources": files,
        }

    def prepare_data(self) -> None:
        prepare_cache(**self._cache_args())

    def setup(self, stage: str | None = None) -> None:
        if self.vocab is not None:
            return
        data = cached(**self._cache_args())
        self.vocab = Vocab(data["vocab"])
        self.vocab_size = self.d_input = len(self.vocab)
        splits = {name: TokenDataset(encoded) for name, encoded in data["splits"].items()}
        self.data_train, self.data_test = splits["train"], splits["test"]
        self.data_val = splits.get("val", self.data_test)
