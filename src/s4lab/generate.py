"""generate(cfg): load a trained run, switch it to recurrent mode, sample, write the samples.

Text tasks (a vocabulary in the checkpoint): `prompt` is tokenized by whitespace with the run's
vocabulary after a line start (`<eos>`, the WikiText convention); samples go to samples.txt,
one per paragraph, `<eos>` read as a line break.
Pixel tasks (image_shape and start_token in the checkpoint, s4lab.data.pixel_lm): the prompts are
the first `prompt_pixels` pixels of the first n_samples test images (none: from the start token);
samples go to samples.png, one row per sample: the prompt (unseen pixels dark red), the sample.
Tasks with bare ids: `prompt` is space-separated ids; samples.txt holds ids.
Forecasting tasks forecast n_samples test windows in one pass each (s4lab.forecast_plot):
forecast.png and forecast.npz, the truth beside the forecast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig
from PIL import Image
from torch import Tensor

from s4lab.autoregressive import require_recurrent, sample_sequences
from s4lab.checkpoint import load
from s4lab.forecast_plot import run_test_split, write_forecasts
from s4lab.tasks.forecasting import Forecaster

LINE_START = "<eos>"  # WikiText ends every line with <eos>: the token before a line's first word
TEXT_LENGTH = 100  # default tokens per text sample
UNSEEN = (96, 0, 0)  # colour of the pixels a prompt image does not show


def text_prompt(text: str, vocab: list[str]) -> list[int]:
    """The line start, then the ids of the whitespace-separated words of `text`."""
    index = {w: i for i, w in enumerate(vocab)}
    ids = [index[LINE_START]] if LINE_START in index else []
    for word in text.split():
        if word not in index and "<unk>" not in index:
            raise ValueError(f"prompt word {word!r} is not in the run's vocabulary")
        ids.append(index.get(word, index.get("<unk>")))
    if not ids:
        raise ValueError("this vocabulary has no <eos> line start: give a non-empty prompt")
    return ids


def decode_text(ids: list[int], vocab: list[str]) -> str:
    """Words joined by spaces, `<eos>` as a line break."""
    words = [vocab[i] for i in ids]
    return " ".join(words).replace(f" {LINE_START} ", "\n").replace(LINE_START, "\n").strip()


def image_prompts(run_config: dict[str, Any], n: int, pixels: int) -> Tensor:
    """The first `pixels` pixel tokens of the first n test images of the run's data: (n, pixels)."""
    data = run_test_split(run_config)
    if len(data.data_test) < n:
        raise ValueError(f"n_samples = {n} exceeds the {len(data.data_test)} test images")
    return torch.stack([data.data_test[i][1][:pixels] for i in range(n)])


def image_grid(samples: Tensor, prompt_pixels: int, shape: tuple[int, int]) -> Image.Image:
    """samples (n, h·w) pixel ids -> one row per sample: [prompt | sample], 1 px gaps."""
    h, w = shape
    pixels = samples.clamp(0, 255).to(torch.uint8).numpy().reshape(-1, h, w)
    rgb = np.repeat(pixels[..., None], 3, axis=-1)  # (n, h, w, 3)
    prompt = rgb.copy().reshape(len(rgb), h * w, 3)
    prompt[:, prompt_pixels:] = UNSEEN
    columns = [prompt.reshape(rgb.shape), rgb] if prompt_pixels else [rgb]
    grid = np.full((len(rgb) * (h + 1), len(columns) * (w + 1), 3), 255, dtype=np.uint8)
    for i in range(len(rgb)):
        for j, column in enumerate(columns):
            grid[i * (h + 1) : i * (h + 1) + h, j * (w + 1) : j * (w + 1) + w] = column[i]
    return Image.fromarray(grid).resize((grid.shape[1] * 4, grid.shape[0] * 4), Image.NEAREST)


def generate(cfg: DictConfig) -> Path:
    """Sample n_samples sequences from the run `cfg.run`; returns the file written."""
    if cfg.run is None:
        raise ValueError("give the trained run: python generate.py run=<run dir or .ckpt file>")
    if cfg.torch_threads is not None:
        torch.set_num_threads(cfg.torch_threads)
    task = load(cfg.run, map_location=cfg.device)
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    if isinstance(task, Forecaster):
        if cfg.prompt or cfg.prompt_pixels or cfg.length is not None:
            raise ValueError(
                "a forecasting run forecasts test windows: give n_samples=<windows>, "
                "not prompt, prompt_pixels or length (its horizon is the run's)"
            )
        return write_forecasts(task, cfg.n_samples, cfg.device, out)
    require_recurrent(task)
    tokens = getattr(task, "tokens", None) or {}
    generator = torch.Generator(cfg.device).manual_seed(cfg.seed)
    sampling = {"temperature": cfg.temperature, "top_k": cfg.top_k, "top_p": cfg.top_p}
    if "image_shape" in tokens:
        if cfg.prompt:
            raise ValueError("an image task takes prompt_pixels=<n>, not a text prompt")
        shape = tuple(tokens["image_shape"])
        start = torch.full((cfg.n_samples, 1), tokens["start_token"], dtype=torch.int64)
        given = torch.zeros(cfg.n_samples, 0, dtype=torch.int64)
        if cfg.prompt_pixels:
            given = image_prompts(task.run_config, cfg.n_samples, cfg.prompt_pixels)
        length = shape[0] * shape[1] - cfg.prompt_pixels
        if cfg.length is not None and cfg.length != length:
            raise ValueError(
                f"length={cfg.length}: an image task samples the rest of the image, "
                f"{shape[0]}x{shape[1]} - prompt_pixels = {length}; leave length=null"
            )
        prompt = torch.cat([start, given], dim=1).to(cfg.device)
        samples = sample_sequences(task, prompt, length, generator=generator, **sampling)
        path = out / "samples.png"
        image_grid(samples[:, 1:].cpu(), cfg.prompt_pixels, shape).save(path)
        return path
    if cfg.prompt_pixels:
        raise ValueError("prompt_pixels is for image tasks (data=pixel_lm); give prompt=<text>")
    vocab = tokens.get("vocab")
    ids = text_prompt(cfg.prompt, vocab) if vocab else [int(t) for t in cfg.prompt.split()]
    prompt = torch.tensor([ids] * cfg.n_samples, device=cfg.device)
    length = TEXT_LENGTH if cfg.length is None else cfg.length
    samples = sample_sequences(task, prompt, length, generator=generator, **sampling).tolist()
    texts = [decode_text(s, vocab) if vocab else " ".join(map(str, s)) for s in samples]
    path = out / "samples.txt"
    path.write_text("\n\n".join(texts) + "\n", encoding="utf-8")
    return path
