"""Generation: a tiny model trained here regenerates its repeating pattern exactly (greedy, prompt
by state forwarding), generate(cfg) writes text and PNG samples from trained run directories,
and runs that cannot generate fail naming the path or the fix."""

from __future__ import annotations

import functools
import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize
from hydra.core.global_hydra import GlobalHydra
from PIL import Image
from test_data_ett import write_ett_csv

from s4lab.autoregressive import NoRecurrentModeError, require_recurrent, sample_sequences
from s4lab.checkpoint import load
from s4lab.data.base import DataSizes
from s4lab.forecast_plot import run_test_split
from s4lab.generate import generate
from s4lab.models.backbone import SequenceModel
from s4lab.models.block import S4Block
from s4lab.models.heads import ClassificationHead, LinearHead
from s4lab.models.s4d import S4DKernel
from s4lab.tasks.classification import SequenceClassifier
from s4lab.tasks.language_model import LanguageModel
from s4lab.train import train

PATTERN = [0, 1, 2, 0, 3, 4]  # after 0 comes 1 or 3: the next token needs two of context
TINY = ["model.d_model=8", "model.n_layers=1", "model.layer.kernel.d_state=4"]
QUIET = ["callbacks.progress_bar=null", "callbacks.model_summary=null", "trainer.accelerator=cpu"]


def s4d_lm(vocab: int, l_max: int) -> LanguageModel:
    torch.manual_seed(0)
    layer = functools.partial(S4Block, kernel=functools.partial(S4DKernel, d_state=8))
    task = LanguageModel(
        model=functools.partial(SequenceModel, layer=layer, d_model=16, n_layers=2),
        head=LinearHead,
        optimizer=torch.optim.AdamW,
    )
    task.build(DataSizes(d_input=vocab, d_output=vocab, l_max=l_max, vocab_size=vocab))
    return task


def test_a_trained_model_regenerates_its_pattern_exactly():
    task, L = s4d_lm(5, 24), 24
    stream = torch.tensor(PATTERN * 20)
    optimizer = torch.optim.AdamW(task.parameters(), lr=1e-2)
    for step in range(200):
        starts = torch.randint(0, len(PATTERN), (8,), generator=torch.Generator().manual_seed(step))
        batch = torch.stack([stream[s : s + L + 1] for s in starts.tolist()])
        loss = torch.nn.functional.cross_entropy(
            task(batch[:, :-1]).flatten(0, 1), batch[:, 1:].flatten()
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    task.eval()
    prompt = torch.tensor([PATTERN[2:5], PATTERN[5:] + PATTERN[:2]])  # two phases of the cycle
    out = sample_sequences(task, prompt, 90, temperature=0)
    for row, start in zip(out.tolist(), (2, 5), strict=True):
        assert row == (PATTERN * 20)[start : start + 93]


def write_text_run_data(folder: Path) -> None:
    """WikiText-style files of one repeated sentence."""
    folder.mkdir(parents=True)
    sentence = "in the beginning was the word and the word was with the light"
    for split, n in (("train", 300), ("valid", 20), ("test", 20)):
        (folder / f"wiki.{split}.tokens").write_text((sentence + "\n") * n, encoding="utf-8")


def write_idx(path: Path, array: np.ndarray) -> None:
    magic = 0x0803 if array.ndim == 3 else 0x0801
    raw = struct.pack(f">{1 + array.ndim}I", magic, *array.shape) + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw))


def write_image_run_data(folder: Path) -> np.ndarray:
    """Random IDX train (40) and test (8) images; returns the test images (8, 28, 28)."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 40), ("t10k", 8)):
        images = rng.integers(0, 256, (n, 28, 28))
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, n))
    return images


def generate_config(run: Path, out: Path, *overrides: str):
    GlobalHydra.instance().clear()
    with initialize(version_base="1.3", config_path="../configs"):
        return compose("generate", overrides=[f"run={run}", f"output_dir={out}", *overrides])


def test_generate_writes_text_from_a_trained_run(compose_train, tmp_path):
    write_text_run_data(tmp_path / "data" / "kjv")
    cfg = compose_train(
        "experiment=generation/kjv",
        f"paths.data_dir={tmp_path / 'data'}",
        "data.l_max=32",
        "data.batch_size=4",
        "data.batch_size_eval=4",
        *TINY,
        *QUIET,
        output_dir=tmp_path / "run",
    )
    train(cfg)
    gen = generate_config(tmp_path / "run", tmp_path / "out", "prompt='the word'", "length=12")
    path = generate(gen)
    text = path.read_text(encoding="utf-8")
    samples = text.strip().split("\n\n")
    assert path.name == "samples.txt" and len(samples) == gen.n_samples == 4
    vocab = {"in", "the", "beginning", "was", "word", "and", "with", "light"}
    for sample in samples:
        words = sample.split()
        assert words[:2] == ["the", "word"]
        assert len(words) == 2 + 12 - sample.count("\n") and set(words) <= vocab
    assert generate(gen).read_text(encoding="utf-8") == text  # the seed fixes the samples
    other = generate(
        generate_config(
            tmp_path / "run", tmp_path / "out2", "seed=1", "length=12", "prompt='the word'"
        )
    )
    assert other.read_text(encoding="utf-8") != text


def test_generate_writes_an_image_grid_from_a_pixel_run(compose_train, tmp_path):
    test_images = write_image_run_data(tmp_path / "data" / "fashion-mnist")
    cfg = compose_train(
        "experiment=generation/fashion_pixels",
        f"paths.data_dir={tmp_path / 'data'}",
        "trainer.limit_train_batches=2",
        "trainer.limit_val_batches=1",
        "trainer.limit_test_batches=1",
        *TINY,
        *QUIET,
        output_dir=tmp_path / "run",
    )
    train(cfg)
    gen = generate_config(tmp_path / "run", tmp_path / "out", "prompt_pixels=700", "n_samples=3")
    path = generate(gen)
    image = np.asarray(Image.open(path))
    assert path.name == "samples.png"
    assert image.shape == (3 * 29 * 4, 2 * 29 * 4, 3)  # 3 rows of [prompt | sample], 4x scale
    prompt_cells = image[: 28 * 4, : 28 * 4].reshape(28, 4, 28, 4, 3)[:, 0, :, 0]
    assert (prompt_cells.reshape(-1, 3)[700:] == (96, 0, 0)).all()  # unseen pixels marked
    sample_cells = image[: 28 * 4, 29 * 4 : 29 * 4 + 28 * 4].reshape(28, 4, 28, 4, 3)[:, 0, :, 0]
    first_test_image = test_images[0].reshape(-1)[:700]  # the prompt: its first 700 pixels
    np.testing.assert_array_equal(prompt_cells.reshape(-1, 3)[:700, 0], first_test_image)
    np.testing.assert_array_equal(sample_cells.reshape(-1, 3)[:700, 0], first_test_image)


def test_a_missing_run_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "nowhere")):
        generate(generate_config(tmp_path / "nowhere", tmp_path / "out"))


def test_a_task_without_recurrent_mode_names_the_fix():
    task = SequenceClassifier(
        model=functools.partial(SequenceModel, layer=S4Block, d_model=8, n_layers=1),
        head=ClassificationHead,
        optimizer=torch.optim.AdamW,
    )
    with pytest.raises(NoRecurrentModeError, match="task=language_model"):
        require_recurrent(task)


def test_generate_plots_forecasts_of_test_windows(compose_train, tmp_path):
    """A forecasting run: forecast.npz holds the test windows' truth and the task's forecasts on
    the original scale, forecast.png one panel per window; text/pixel options are refused."""
    write_ett_csv(tmp_path / "data" / "informer/etth/ETTh1.csv", 17_420)
    cfg = compose_train(
        "experiment=forecasting/etth1_multivariate",
        f"paths.data_dir={tmp_path / 'data'}",
        "data.seq_len=48",
        "data.horizon=24",
        "trainer.limit_train_batches=2",
        "trainer.limit_val_batches=1",
        "trainer.limit_test_batches=1",
        "trainer.val_check_interval=1.0",
        *TINY,
        *QUIET,
        output_dir=tmp_path / "run",
    )
    train(cfg)
    path = generate(generate_config(tmp_path / "run", tmp_path / "out", "n_samples=3"))
    assert path.name == "forecast.png" and Image.open(path).size == (800, 600)  # 3 panels
    arrays = np.load(tmp_path / "out" / "forecast.npz")
    task = load(tmp_path / "run")
    data = run_test_split(task.run_config)
    windows = len(data.data_test)
    assert arrays["index"].tolist() == [0, round((windows - 1) / 2), windows - 1]
    pairs = [data.data_test[int(i)] for i in arrays["index"]]
    x, y = (torch.stack(t) for t in zip(*pairs, strict=True))
    mean, std = data.mean.numpy(), data.std.numpy()
    np.testing.assert_allclose(arrays["truth"], y.numpy() * std + mean, rtol=1e-5)
    with torch.no_grad():
        forecast = task.eval()(x, 24).numpy() * std + mean
    np.testing.assert_allclose(arrays["forecast"], forecast, rtol=1e-4, atol=1e-4)
    assert arrays["truth"].shape == (3, 24, 7) and str(arrays["name"]) == "OT"
    with pytest.raises(ValueError, match="n_samples=<windows>, not prompt"):
        generate(generate_config(tmp_path / "run", tmp_path / "o2", "prompt='x'"))
