"""Speech Commands v0.02 (SC10 and SC35): raw 16 kHz waveforms (L = 16000) or MFCC (L = 161).

Layout: `data_dir/speech_commands_v0.02/<word>/<speaker>_nohash_<n>.wav` (torchaudio's folder), or
the words directly under `data_dir/` (the official repo extracts the tarball there), plus
`validation_list.txt` and `testing_list.txt` (one `word/file.wav` per line). 16-bit PCM mono 16 kHz,
read with the standard library's `wave`; audio a = sample / 2^15.
As the official repo (`src/dataloaders/datasets/sc.py`):
- SC10: words yes no up down left right on off stop go (labels 0..9); clips shorter than 16000
  samples are dropped; a stratified 70/15/15 split: train = ⌊0.7 n⌋ (seed 0), then the rest halved,
  val = ⌊n_rest / 2⌋ (seed 1). Real data: 34,975 clips -> 24,482 / 5,246 / 5,247.
- SC35: all 35 words in the official label order below; short clips zero-padded at the end to 16000;
  split by the list files (val / test / everything else = train).
- MFCC (optional): 20 coefficients, n_fft 200, 64 mels, log mels (`s4lab.data.mfcc`), (161, 20).
- z-score with training statistics, x = (a − μ) / (σ + 1e-5), σ unbiased: per MFCC coefficient,
  and for raw audio per time position (μ, σ of shape (16000,)), because the official code
  normalizes the last axis of its (N, 1, 16000) tensor.
Difference from the official repo: it lists each word folder in `os.listdir` order, so its SC10
split depends on the file system (the Mega paper's S4 re-run gave 97.50 instead of 98.32). We list
files in sorted order and draw the stratified split from torch generators seeded 0 and 1, so the
split is the same on every machine (but not the official one, which cannot be reproduced).
Half-rate evaluation (x[:, ::2]) is done by the classification task (`eval_rates`), not here.
Processed tensors are cached under `data_dir/cache/` by `prepare_data()`, keyed by the options,
the list files' checksums and every clip's name and size.
"""

from __future__ import annotations

import hashlib
import math
import wave
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import Dataset

from s4lab.data.base import SequenceDataModule, require
from s4lab.data.cache import cached, prepare_cache
from s4lab.data.mfcc import mfcc

PREPARE = "python scripts/prepare_data.py speech-commands"
SAMPLE_RATE = 16000
SC10_CLASSES = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
SC35_CLASSES = (
    "bed", "cat", "down", "five", "forward", "go", "house", "left", "marvin", "no", "on", "right",
    "sheila", "tree", "up", "visual", "yes", "backward", "bird", "dog", "eight", "follow", "four",
    "happy", "learn", "nine", "off", "one", "seven", "six", "stop", "three", "two", "wow", "zero",
)  # fmt: skip
MFCC_FRAMES, N_MFCC = 1 + SAMPLE_RATE // 100, 20
EPS = 1e-5
CHUNK = 1024  # clips per MFCC batch
SPLITS = ("train", "val", "test")


def read_wav(path: Path) -> Tensor:
    """16-bit PCM mono 16 kHz WAV -> int16 samples (T,)."""
    try:
        with wave.open(str(path), "rb") as f:
            form = (f.getnchannels(), f.getsampwidth(), f.getframerate())
            n = f.getnframes()
            frames = f.readframes(n)
    except (wave.Error, EOFError, OSError) as e:
        raise ValueError(f"{path}: corrupt or truncated WAV file ({e})") from e
    if form != (1, 2, SAMPLE_RATE):
        raise ValueError(
            f"{path}: expected mono 16-bit PCM at {SAMPLE_RATE} Hz; got {form[0]} channel(s), "
            f"{8 * form[1]}-bit, {form[2]} Hz"
        )
    if len(frames) != 2 * n:
        raise ValueError(f"{path}: truncated WAV data ({len(frames) // 2} of {n} samples)")
    if n > SAMPLE_RATE:
        raise ValueError(f"{path}: {n} samples; Speech Commands clips hold at most {SAMPLE_RATE}")
    return torch.frombuffer(bytearray(frames), dtype=torch.int16)


def stratified_split(labels: Tensor, train_fraction: float, seed: int) -> tuple[Tensor, Tensor]:
    """Indices (first, rest) with |first| = ⌊f n⌋ and each class split in proportion.

    Per class c: ⌊f n_c⌋ go first; the remaining first-part slots go to the classes with the largest
    fractional parts (ties: lower class). Members of each class are shuffled by a seeded generator.
    """
    g = torch.Generator().manual_seed(seed)
    classes, counts = labels.unique(return_counts=True)
    quota = counts.double() * train_fraction
    take = quota.floor().long()
    missing = math.floor(train_fraction * len(labels)) - int(take.sum())
    order = sorted(range(len(classes)), key=lambda c: (-(quota[c] - take[c]).item(), c))
    for c in order[:missing]:
        take[c] += 1
    first, rest = [], []
    for c, k in zip(classes.tolist(), take.tolist(), strict=True):
        members = (labels == c).nonzero().flatten()
        members = members[torch.randperm(len(members), generator=g)]
        first.append(members[:k])
        rest.append(members[k:])
    return torch.cat(first).sort().values, torch.cat(rest).sort().values


class SpeechSequences(Dataset):
    """item i -> (x (L, C) float32, z-scored, y int64); X holds int16 audio or float MFCC."""

    def __init__(self, X: Tensor, y: Tensor, mean: Tensor, std: Tensor) -> None:
        self.X, self.y = X, y  # (n, L, C), (n,)
        self.scale = 2.0**-15 if X.dtype == torch.int16 else 1.0
        self.mean, self.std = mean, std  # broadcast to (L, C)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        x = self.X[i].float() * self.scale  # (L, C)
        return (x - self.mean) / (self.std + EPS), self.y[i]


def train_statistics(X: Tensor, scale: float, dim: tuple[int, ...]) -> tuple[Tensor, Tensor]:
    """Mean and unbiased std of X·scale over `dim` (kept), accumulated in float64 chunks."""
    total = torch.zeros(1, dtype=torch.float64)
    sq = torch.zeros(1, dtype=torch.float64)
    count = 0
    for start in range(0, len(X), CHUNK):
        x = X[start : start + CHUNK].double() * scale
        total = total + x.sum(dim, keepdim=True)[0]
        sq = sq + x.pow(2).sum(dim, keepdim=True)[0]
        count += x.numel() // total.numel()
    mean = total / count
    std = ((sq - count * mean**2) / (count - 1)).clamp(min=0).sqrt()
    return mean.float(), std.float()


class SpeechCommands(SequenceDataModule):
    """SC10 (all_classes=False) or SC35 (all_classes=True); raw audio or MFCC (mfcc=True)."""

    def __init__(
        self,
        data_dir: str,
        batch_size: int = 16,
        batch_size_eval: int | None = None,
        num_workers: int | None = None,
        seed: int = 42,
        track_test: bool = False,
        all_classes: bool = False,
        mfcc: bool = False,
    ) -> None:
        super().__init__(data_dir, batch_size, batch_size_eval, num_workers, seed, track_test)
        self.all_classes, self.mfcc = all_classes, mfcc
        self.classes = SC35_CLASSES if all_classes else SC10_CLASSES
        self.d_input = N_MFCC if mfcc else 1
        self.d_output = len(self.classes)
        self.l_max = MFCC_FRAMES if mfcc else SAMPLE_RATE

    @property
    def root(self) -> Path:
        """The folder holding the word folders and list files."""
        nested = self.data_dir / "speech_commands_v0.02"
        return nested if nested.is_dir() else self.data_dir

    def _files(self) -> list[tuple[str, int]]:
        """(relative path, label) of every clip, words in label order, files sorted."""
        items = []
        for label, word in enumerate(self.classes):
            folder = require(self.root / word, prepare=PREPARE)
            items += [(f"{word}/{p.name}", label) for p in sorted(folder.glob("*.wav"))]
        return items

    def _list_files(self) -> list[Path]:
        return [
            require(self.root / f"{s}_list.txt", prepare=PREPARE) for s in ("validation", "testing")
        ]

    def _split(self, kept: list[str], y: Tensor) -> dict[str, Tensor]:
        """Indices of train/val/test: list files for SC35, seeded stratified 70/15/15 for SC10."""
        if self.all_classes:
            val_list, test_list = (
                {line.strip() for line in p.read_text().splitlines() if line.strip()}
                for p in self._list_files()
            )
            where = torch.tensor([2 if r in test_list else 1 if r in val_list else 0 for r in kept])
            return {name: (where == k).nonzero().flatten() for k, name in enumerate(SPLITS)}
        train, rest = stratified_split(y, 0.7, seed=0)
        val, test = stratified_split(y[rest], 0.5, seed=1)
        return {"train": train, "val": rest[val], "test": rest[test]}

    def _build(self, files: list[tuple[str, int]]) -> dict[str, Tensor]:
        """Read, pad or drop, split, featurize and compute the training statistics."""
        waves, labels, kept = [], [], []
        for rel, label in files:
            a = read_wav(self.root / rel)
            if len(a) < SAMPLE_RATE:
                if not self.all_classes:
                    continue  # SC10 drops short clips, as the official loader
                a = torch.cat([a, a.new_zeros(SAMPLE_RATE - len(a))])
            waves.append(a)
            labels.append(label)
            kept.append(rel)
        if not waves:
            raise ValueError(f"{self.root}: no 16000-sample clips in the folders {self.classes}")
        X = torch.stack(waves)[..., None]  # (n, 16000, 1) int16
        y = torch.tensor(labels, dtype=torch.int64)
        split = self._split(kept, y)
        if self.mfcc:
            X = torch.cat(
                [mfcc(X[i : i + CHUNK, :, 0].float() / 2**15) for i in range(0, len(X), CHUNK)]
            )  # (n, 161, 20)
            mean, std = train_statistics(X[split["train"]], 1.0, (0, 1))  # (1, 20)
        else:
            mean, std = train_statistics(X[split["train"]], 2.0**-15, (0,))  # (16000, 1)
        out = {"mean": mean, "std": std}
        for name, idx in split.items():
            out[f"{name}_X"], out[f"{name}_y"] = X[idx], y[idx]
        return out

    def _cache_args(self) -> dict:
        """Arguments of `cached` / `prepare_cache`; listing the clips checks the folders exist."""
        files = self._files()
        listing = hashlib.sha256()
        for rel, _ in files:
            stat = (self.root / rel).stat()  # clips share one size: the mtime tells rewrites
            listing.update(f"{rel}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
        config = {
            "classes": self.classes,
            "mfcc": self.mfcc,
            "files": listing.hexdigest(),
            "version": 1,  # bump when the processing (mfcc.py, normalization) changes
        }
        return {
            "build": lambda: self._build(files),
            "cache_dir": self.data_dir / "cache",
            "name": f"sc{len(self.classes)}_{'mfcc' if self.mfcc else 'raw'}",
            "config": config,
            "sources": self._list_files() if self.all_classes else [],
        }

    def prepare_data(self) -> None:
        prepare_cache(**self._cache_args())

    def setup(self, stage: str | None = None) -> None:
        if self.data_train is not None:
            return
        data = cached(**self._cache_args())
        self.data_train, self.data_val, self.data_test = (
            SpeechSequences(data[f"{s}_X"], data[f"{s}_y"], data["mean"], data["std"])
            for s in SPLITS
        )
