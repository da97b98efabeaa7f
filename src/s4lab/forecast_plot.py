"""What generate.py writes for a forecasting run: forecasts of test windows beside the truth.

A forecaster predicts its whole horizon in one pass, as it was trained (the future rows of x are
masked inputs), so it needs no recurrent mode. `n` test windows, evenly spaced over the test
split, are forecast; forecast.npz holds, on the original scale, the context (n, L_in, d_output),
the truth and the forecast (n, horizon, d_output) and the window indices; forecast.png plots the
data module's target column: the last 2·horizon context rows, the truth and the forecast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hydra
import numpy as np
import torch
from omegaconf import OmegaConf

PLOTS_FIX = "pip install 's4lab[plots]' (matplotlib) to draw forecast.png"


def run_test_split(run_config: dict[str, Any]) -> Any:
    """The run's data module, set up for its test split."""
    data = hydra.utils.instantiate(OmegaConf.create(run_config)["data"])
    data.prepare_data()
    data.setup("test")
    return data


@torch.no_grad()
def forecast_test_windows(task: Any, n: int, device: str) -> dict[str, np.ndarray]:
    """Forecast n evenly spaced test windows of the run; arrays on the original scale."""
    data = run_test_split(task.run_config)
    windows = len(data.data_test)
    if not 1 <= n <= windows:
        raise ValueError(f"n_samples = {n}: the test split has {windows} windows (1..{windows})")
    index = torch.linspace(0, windows - 1, n).round().long()
    x, y = (torch.stack(t) for t in zip(*(data.data_test[int(i)] for i in index), strict=True))
    horizon = y.shape[1]
    task.eval()
    y_hat = task(x.to(device), horizon).cpu()  # (n, horizon, d_output), scaled
    mean, std = task.mean.cpu(), task.std.cpu()
    targets = task.target_columns.cpu()
    context = x[:, : x.shape[1] - horizon, : task.d_data][..., targets]  # (n, L_in, d_output)
    column = 0 if y.shape[-1] == 1 else list(data.columns).index(data.target)
    return {
        "index": index.numpy(),
        "context": (context * std + mean).numpy(),
        "truth": (y * std + mean).numpy(),
        "forecast": (y_hat * std + mean).numpy(),
        "column": np.array(column),
        "name": np.array(data.target),
    }


def plot_forecasts(arrays: dict[str, np.ndarray], path: Path) -> None:
    """One panel per window: context (grey), truth (black), forecast (red), the target column."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise ImportError(f"{err}; {PLOTS_FIX}") from err
    j = int(arrays["column"])
    n, horizon = arrays["truth"].shape[:2]
    show = min(arrays["context"].shape[1], 2 * horizon)
    fig, axes = plt.subplots(n, 1, figsize=(8, 2 * n), squeeze=False)
    for i, ax in enumerate(axes[:, 0]):
        truth, forecast = arrays["truth"][i, :, j], arrays["forecast"][i, :, j]
        ax.plot(np.arange(-show, 0), arrays["context"][i, -show:, j], color="0.5")
        ax.plot(np.arange(horizon), truth, color="black", label="truth")
        ax.plot(np.arange(horizon), forecast, color="tab:red", label="forecast")
        mse = float(np.mean((forecast - truth) ** 2))
        ax.set_title(
            f"test window {arrays['index'][i]}: {arrays['name']}, MSE {mse:.3g} (original scale)"
        )
    axes[0, 0].legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_forecasts(task: Any, n: int, device: str, out: Path) -> Path:
    """forecast.npz and forecast.png of n test windows into `out`; returns the PNG's path."""
    arrays = forecast_test_windows(task, n, device)
    np.savez(out / "forecast.npz", **arrays)
    path = out / "forecast.png"
    plot_forecasts(arrays, path)
    return path
