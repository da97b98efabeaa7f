"""MNIST-1D (Greydanus 2020): 10 digit templates of 12 points, randomly warped into series of 40.

Per sample: pad with p ~ 36 + ⌊25·u⌋ zeros, interpolate to 72 points, scale by 1 + 0.4(u − ½),
roll by k ~ U{0..47}, replace the zero padding with Gaussian-smoothed noise (0.25, σ = 2), add
0.02 white noise, shear by 0.75(u − ½)·linspace(−½, ½), interpolate to 40 points.
The random draws happen in the published generator's order (seed 42), so the data should match
the published pickle; then the 5000 samples are shuffled, z-scored globally, and split 4000 / 1000.
Published test accuracies: logistic regression 32%, MLP 68%, GRU 91%, CNN 94%, human 96%.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import TensorDataset, random_split

from s4lab.data.base import SequenceDataModule
from s4lab.data.cache import cached, prepare_cache

# The 10 published 12-point digit templates (mnist1d `get_templates`), before whitening.
TEMPLATES = np.array(
    [
        [5, 6, 6.5, 6.75, 7, 7, 7, 7, 6.75, 6.5, 6, 5],
        [5, 3, 3, 3.4, 3.8, 4.2, 4.6, 5, 5.4, 5.8, 5, 5],
        [5, 6, 6.5, 6.5, 6, 5.25, 4.75, 4, 3.5, 3.5, 4, 5],
        [5, 6, 6.5, 6.5, 6, 5, 5, 6, 6.5, 6.5, 6, 5],
        [5, 4.4, 3.8, 3.2, 2.6, 2.6, 5, 5, 5, 5, 5, 5],
        [5, 3, 3, 3, 3, 5, 6, 6.5, 6.5, 6, 4.5, 5],
        [5, 4, 3.5, 3.25, 3, 3, 3, 3, 3.25, 3.5, 4, 5],
        [5, 7, 7, 6.6, 6.2, 5.8, 5.4, 5, 4.6, 4.2, 5, 5],
        [5, 4, 3.5, 3.5, 4, 5, 5, 4, 3.5, 3.5, 4, 5],
        [5, 4, 3.5, 3.5, 4, 5, 5, 5, 5, 4.7, 4.3, 5],
    ]
)

BASELINES = {"logistic regression": 32.0, "MLP": 68.0, "GRU": 91.0, "CNN": 94.0, "human": 96.0}


def templates() -> np.ndarray:
    """Whitened templates starting at 0, divided by 6: (10, 12)."""
    x = TEMPLATES - TEMPLATES.mean(1, keepdims=True)
    x = x / x.std(1, keepdims=True)
    return (x - x[:, :1]) / 6.0


def interpolate(x: np.ndarray, n: int) -> np.ndarray:
    """Linear resampling of a 1-D signal onto n equally spaced points over the same span."""
    return np.interp(np.linspace(0, 1, n), np.linspace(0, 1, len(x)), x)


def gaussian_smooth(x: np.ndarray, sigma: float, truncate: float = 4.0) -> np.ndarray:
    """1-D Gaussian filter with half-sample reflection at the edges (scipy.ndimage's default)."""
    radius = int(truncate * sigma + 0.5)
    offsets = np.arange(-radius, radius + 1)
    w = np.exp(-0.5 * (offsets / sigma) ** 2)
    w /= w.sum()
    padded = np.pad(x, radius, mode="symmetric")
    return np.convolve(padded, w, mode="valid")


def warp(
    x: np.ndarray,
    rng: np.random.RandomState,
    padding: tuple[int, int] = (36, 60),
    scale_coeff: float = 0.4,
    max_translation: int = 48,
    corr_noise_scale: float = 0.25,
    iid_noise_scale: float = 2e-2,
    shear_scale: float = 0.75,
    final_seq_length: int = 40,
) -> np.ndarray:
    """One random MNIST-1D sample from a 12-point template x: (12,) -> (final_seq_length,)."""
    low, high = padding
    p = low + int(rng.rand() * (high - low + 1))
    x = np.concatenate([x + 1e-8, np.zeros(p)])  # +1e-8 keeps the template apart from the padding
    x = interpolate(x, len(TEMPLATES[0]) + high)
    x = x * (1 + scale_coeff * (rng.rand() - 0.5))
    x = np.roll(x, rng.choice(max_translation))
    noise = gaussian_smooth(corr_noise_scale * rng.randn(len(x)), sigma=2)
    x = np.where(x != 0, x, noise)
    x = x + iid_noise_scale * rng.randn(len(x))
    x = x - shear_scale * (rng.rand() - 0.5) * np.linspace(-0.5, 0.5, len(x))
    return interpolate(x, final_seq_length)


def make_mnist1d(
    num_samples: int = 5000, train_split: float = 0.8, seed: int = 42
) -> dict[str, np.ndarray]:
    """Generate MNIST-1D: x (4000, 40), y (4000,), x_test (1000, 40), y_test (1000,)."""
    rng = np.random.RandomState(seed)
    T = templates()
    per_class = num_samples // len(T)
    xs = np.stack([warp(T[label], rng) for label in range(len(T)) for _ in range(per_class)])
    ys = np.repeat(np.arange(len(T)), per_class)
    order = rng.permutation(len(ys))
    xs, ys = xs[order], ys[order]
    xs = (xs - xs.mean()) / xs.std()
    split = int(len(ys) * train_split)
    return {"x": xs[:split], "y": ys[:split], "x_test": xs[split:], "y_test": ys[split:]}


class MNIST1D(SequenceDataModule):
    """MNIST-1D as (B, 40, 1) float sequences with 10 classes; val is held out from train.

    Generated in `prepare_data()` into `data_dir/cache/` (data_dir: this dataset's folder).
    """

    baselines = BASELINES  # published test accuracies (%), printed next to ours after training

    def __init__(
        self,
        data_dir: str,
        batch_size: int = 64,
        batch_size_eval: int | None = None,
        num_workers: int | None = None,
        seed: int = 42,
        track_test: bool = False,
        val_size: int = 400,
    ) -> None:
        super().__init__(data_dir, batch_size, batch_size_eval, num_workers, seed, track_test)
        self.val_size = val_size
        self.d_input, self.d_output, self.l_max = 1, 10, 40

    def _cache_args(self) -> dict:
        """Arguments of `cached` / `prepare_cache` for this dataset."""
        return {
            "build": make_mnist1d,
            "cache_dir": self.data_dir / "cache",
            "name": "mnist1d",
            "config": {"seed": 42, "version": 1},
            "sources": [],
        }

    def prepare_data(self) -> None:
        prepare_cache(**self._cache_args())

    def setup(self, stage: str | None = None) -> None:
        if self.data_train is not None:
            return
        data = cached(**self._cache_args())

        def tensors(x: np.ndarray, y: np.ndarray) -> TensorDataset:
            return TensorDataset(torch.tensor(x, dtype=torch.float32)[..., None], torch.tensor(y))

        train = tensors(data["x"], data["y"])
        n_train = len(train) - self.val_size
        g = torch.Generator().manual_seed(self.seed)
        self.data_train, self.data_val = random_split(train, [n_train, self.val_size], g)
        self.data_test = tensors(data["x_test"], data["y_test"])
