"""Pathfinder / Path-X datamodule on tiny fixtures in the exact published layout (< 5 s).

Fixture: metadata/2.npy as plain text (the LRA release) and metadata/10.npy as a real .npy string
array (the upstream generator), six PNGs per batch, one of them zero bytes. Batch ids 2 and 10
check that metadata files are ordered by integer, not by name.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY, train_checked
from PIL import Image

from s4lab.data import pathfinder
from s4lab.data.base import MissingDataError
from s4lab.data.pathfinder import Pathfinder, read_metadata

BATCHES = (2, 10)
PER_BATCH = 6
EMPTY = (
    2,
    4,
)  # imgs/2/sample_4.png is zero bytes, as pathfinder32/curv_baseline/imgs/0/sample_172.png


def pixels(batch: int, i: int, resolution: int) -> np.ndarray:
    """Distinct, known pixels for each fixture image."""
    return (
        ((np.arange(resolution**2) * 7 + 31 * batch + 5 * i) % 256)
        .astype(np.uint8)
        .reshape(resolution, resolution)
    )


def label(batch: int, i: int) -> int:
    return (batch + i) % 2


def metadata_rows(batch: int, n: int) -> list[list[str]]:
    return [
        [f"imgs/{batch}", f"sample_{i}.png", str(i), str(label(batch, i))]
        + ["1.0", "14", "4", "2", "0.5", "1", "1"]
        for i in range(n)
    ]


def write_pathfinder(
    folder: Path,
    resolution: int = 32,
    batches: tuple[int, ...] = BATCHES,
    per_batch: int = PER_BATCH,
) -> Path:
    """Write the published layout under the dataset folder (the datamodule's data_dir, the
    release's pathfinder/); return the difficulty folder."""
    root = folder / f"pathfinder{resolution}" / "curv_contour_length_14"
    (root / "metadata").mkdir(parents=True, exist_ok=True)
    for k, batch in enumerate(batches):
        (root / "imgs" / str(batch)).mkdir(parents=True, exist_ok=True)
        for i in range(per_batch):
            path = root / "imgs" / str(batch) / f"sample_{i}.png"
            if (batch, i) == EMPTY:
                path.write_bytes(b"")
            else:
                Image.fromarray(pixels(batch, i, resolution)).save(path)
        rows = metadata_rows(batch, per_batch)
        meta = root / "metadata" / f"{batch}.npy"
        if k % 2 == 0:
            meta.write_text("".join(" ".join(r) + "\n" for r in rows))
        else:
            np.save(meta, np.array(rows, dtype="<U32"))
    return root


def expected(resolution: int = 32) -> tuple[list[np.ndarray], list[int]]:
    """Images and labels in the official order, zero-byte file skipped."""
    keys = [(b, i) for b in BATCHES for i in range(PER_BATCH) if (b, i) != EMPTY]
    return [pixels(b, i, resolution) for b, i in keys], [label(b, i) for b, i in keys]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    write_pathfinder(tmp_path / "pathfinder")
    return tmp_path / "pathfinder"


def test_shapes_dtypes_sizes(data_dir: Path) -> None:
    dm = Pathfinder(str(data_dir), batch_size=4)
    dm.setup("fit")
    assert (dm.d_input, dm.d_output, dm.l_max, dm.vocab_size) == (1, 2, 1024, None)
    assert [len(dm.data_train), len(dm.data_val), len(dm.data_test)] == [9, 1, 1]
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (4, 1024, 1) and x.dtype == torch.float32
    assert y.shape == (4,) and y.dtype == torch.int64


def test_order_labels_and_zero_byte_skip(data_dir: Path) -> None:
    dm = Pathfinder(str(data_dir))
    dm.setup("fit")
    full = dm.data_train.dataset
    images, labels = expected()
    assert len(full) == 2 * PER_BATCH - 1
    assert full.labels.tolist() == labels
    for n, image in enumerate(images):
        x, y = full[n]
        torch.testing.assert_close(x[:, 0], torch.from_numpy(image).reshape(-1).float() / 255)


def test_split_is_random_split_seeded_42(data_dir: Path) -> None:
    dm = Pathfinder(str(data_dir), seed=7)  # the run seed does not move the split
    dm.setup("fit")
    perm = torch.randperm(11, generator=torch.Generator().manual_seed(42)).tolist()
    assert list(dm.data_train.indices) == perm[:9]
    assert list(dm.data_val.indices) == perm[9:10]
    assert list(dm.data_test.indices) == perm[10:]


def test_official_split_at_full_scale_through_the_loaders(monkeypatch, tmp_path: Path) -> None:
    """200k images through setup() and the loaders: 160k / 20k / 20k, the official seed-42 split.

    The decoded-image cache is replaced by one black image broadcast 200k times, labelled with
    each image's index, so the labels a loader yields say which images it holds.
    """
    n = 200_000
    data = {
        "images": torch.zeros(1, 32, 32, dtype=torch.uint8).expand(n, 32, 32),
        "labels": torch.arange(n),
    }
    monkeypatch.setattr(pathfinder, "cached", lambda **_: data)
    monkeypatch.setattr(Pathfinder, "_cache_args", lambda self: {})
    dm = Pathfinder(str(tmp_path), batch_size=64, batch_size_eval=10_000, seed=7)
    dm.setup("fit")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(42))
    train = dm.train_dataloader()
    assert len(train.dataset) == 160_000 and len(train) == 2500
    x, y = next(iter(train))
    assert x.shape == (64, 1024, 1) and set(y.tolist()) <= set(perm[:160_000].tolist())
    for loader, part in (
        (dm.val_dataloader(), perm[160_000:180_000]),
        (dm.test_dataloader(), perm[180_000:]),
    ):
        assert torch.equal(torch.cat([y for _, y in loader]), part)


def test_center_and_tokenize(data_dir: Path) -> None:
    image = torch.from_numpy(expected()[0][0]).reshape(-1)
    dm = Pathfinder(str(data_dir), center=True)
    dm.setup("fit")
    x, _ = dm.data_train.dataset[0]
    torch.testing.assert_close(x[:, 0], (image.float() / 255 - 0.5) / 0.5)
    assert x.min() >= -1.0 and x.max() <= 1.0 and x.min() < -0.9 and x.max() > 0.9
    dm = Pathfinder(str(data_dir), tokenize=True)
    dm.setup("fit")
    assert (dm.d_input, dm.vocab_size) == (256, 256)
    x, _ = dm.data_train.dataset[0]
    assert x.dtype == torch.int64 and x.shape == (1024,)
    assert torch.equal(x, image.long())


def test_text_and_npy_metadata_agree(tmp_path: Path) -> None:
    rows = metadata_rows(0, 5)
    text, npy = tmp_path / "0.npy", tmp_path / "1.npy"
    text.write_text("".join(" ".join(r) + "\n" for r in rows))
    np.save(npy, np.array(rows, dtype="<U32"))
    assert read_metadata(text) == read_metadata(npy)
    assert read_metadata(text) == [("imgs/0", f"sample_{i}.png", label(0, i)) for i in range(5)]


def test_pathx_resolution_128(tmp_path: Path) -> None:
    write_pathfinder(tmp_path, resolution=128, batches=(0,), per_batch=2)
    dm = Pathfinder(str(tmp_path), resolution=128, val_split=0.0, test_split=0.0)
    dm.setup("fit")
    assert dm.l_max == 16384
    x, y = dm.data_train.dataset[1]
    assert x.shape == (16384, 1) and y.item() == label(0, 1)


def test_cache_reused_and_rebuilt_on_change(data_dir: Path) -> None:
    Pathfinder(str(data_dir)).setup("fit")
    cache = data_dir / "cache"
    assert len(list(cache.glob("pathfinder32-*.pt"))) == 1
    Pathfinder(str(data_dir)).setup("fit")
    assert len(list(cache.glob("pathfinder32-*.pt"))) == 1  # same key, loaded
    png = data_dir / "pathfinder32/curv_contour_length_14/imgs/2/sample_0.png"
    Image.fromarray(np.full((32, 32), 200, np.uint8)).save(png)
    dm = Pathfinder(str(data_dir))
    dm.setup("fit")
    assert len(list(cache.glob("pathfinder32-*.pt"))) == 2
    assert torch.all(dm.data_train.dataset[0][0] == 200 / 255)


def test_missing_data_names_path_and_command(tmp_path: Path) -> None:
    with pytest.raises(MissingDataError) as e:
        Pathfinder(str(tmp_path)).setup("fit")
    assert "pathfinder32/curv_contour_length_14/metadata" in str(e.value)
    assert "python scripts/prepare_data.py pathfinder --generate" in str(e.value)
    with pytest.raises(MissingDataError, match="prepare_data.py pathx --generate"):
        Pathfinder(str(tmp_path), resolution=128).setup("fit")


def test_missing_image_names_the_file(data_dir: Path) -> None:
    (data_dir / "pathfinder32/curv_contour_length_14/imgs/10/sample_3.png").unlink()
    with pytest.raises(MissingDataError, match="imgs/10/sample_3.png"):
        Pathfinder(str(data_dir)).setup("fit")


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_png_names_the_file(data_dir: Path, damage: str) -> None:
    png = data_dir / "pathfinder32/curv_contour_length_14/imgs/10/sample_1.png"
    good = png.read_bytes()
    png.write_bytes(b"not a png at all" if damage == "garbage" else good[: len(good) // 2])
    with pytest.raises(ValueError, match=r"imgs/10/sample_1\.png: corrupt or truncated PNG"):
        Pathfinder(str(data_dir)).setup("fit")


def test_wrong_image_size_says_what_was_expected(data_dir: Path) -> None:
    png = data_dir / "pathfinder32/curv_contour_length_14/imgs/2/sample_1.png"
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(png)
    with pytest.raises(ValueError, match=r"sample_1\.png: expected a 32x32 image, got 16x16"):
        Pathfinder(str(data_dir)).setup("fit")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"imgs/2 sample_0.png\n", r"2\.npy: row 1: expected 'imgs/<k> sample_<i>\.png <i> <label"),
        (b"imgs/2 sample_0.png 0 7 1.0\n", r"row 1: expected .*<label 0\|1>"),
        (b"\xff\xfe\x00binary", r"expected plain-text metadata lines or a \.npy string array"),
        ("npy-float", r"expected a \(n, 11\) string array"),
    ],
)
def test_wrong_metadata_format_says_what_was_expected(
    data_dir: Path, content: bytes | str, message: str
) -> None:
    meta = data_dir / "pathfinder32/curv_contour_length_14/metadata/2.npy"
    if content == "npy-float":
        np.save(meta, np.zeros((6, 11)))
    else:
        meta.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        Pathfinder(str(data_dir)).setup("fit")


def test_metadata_name_must_be_integer(data_dir: Path) -> None:
    meta = data_dir / "pathfinder32/curv_contour_length_14/metadata"
    (meta / "2.npy").rename(meta / "two.npy")
    with pytest.raises(ValueError, match=r"expected metadata files named <k>\.npy with integer k"):
        Pathfinder(str(data_dir)).setup("fit")


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="difficulty must be one of"):
        Pathfinder("data", difficulty="curv_contour_length_12")
    with pytest.raises(ValueError, match="center and tokenize exclude each other"):
        Pathfinder("data", center=True, tokenize=True)


@pytest.mark.parametrize(
    ("experiment", "resolution"),
    [("lra/pathfinder", 32), ("lra/pathx", 128)],
)
def test_one_training_step_through_train(
    compose_train, tmp_path: Path, experiment: str, resolution: int
) -> None:
    write_pathfinder(tmp_path / "data" / "pathfinder", resolution=resolution)
    cfg = compose_train(
        *TINY,
        "debug=fdr",
        f"experiment={experiment}",
        f"paths.data_dir={tmp_path / 'data'}",
        "data.batch_size=4",
        "data.batch_size_eval=4",
    )
    train_checked(cfg)
