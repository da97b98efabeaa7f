"""Pathfinder generator: published layout, seeding, label balance, visible markers.

Fast tests use a few dozen 32×32 images (~20 ms each); the 2,000-image balance and statistics
check is `slow` (~1 min on two cores).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from s4lab.data.generators import pathfinder as pf
from s4lab.data.pathfinder import Pathfinder, read_metadata

ROOT = "pathfinder32/curv_contour_length_14"


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_published_layout_read_by_the_loader(tmp_path: Path) -> None:
    root = pf.generate(tmp_path / "pathfinder", resolution=32, n=12, seed=0, workers=1)
    assert root == tmp_path / "pathfinder" / ROOT
    assert sorted(p.name for p in (root / "imgs" / "0").iterdir()) == sorted(
        f"sample_{i}.png" for i in range(12)
    )
    lines = (root / "metadata" / "0.npy").read_text().splitlines()
    fields = lines[3].split()
    assert fields[:3] == ["imgs/0", "sample_3.png", "3"] and fields[3] in ("0", "1")
    assert fields[4:9] == ["1.0", "14", "4", "2", "0.5"] and fields[10] == "1"
    with Image.open(root / "imgs" / "0" / "sample_3.png") as im:
        assert (im.mode, im.size) == ("L", (32, 32))
    dm = Pathfinder(str(tmp_path), val_split=0.0, test_split=0.0)
    dm.setup("fit")
    assert len(dm.data_train) == 12
    assert dm.data_train.dataset.labels.tolist() == [int(line.split()[3]) for line in lines]


def test_npy_metadata_is_a_string_array(tmp_path: Path) -> None:
    root = pf.generate(tmp_path, resolution=32, n=4, seed=0, workers=1, metadata_format="npy")
    table = np.load(root / "metadata" / "0.npy")
    assert table.shape == (4, 11) and table.dtype.kind == "U"
    assert [tuple(r) for r in table[:, [0, 1]]] == [("imgs/0", f"sample_{i}.png") for i in range(4)]
    text_root = pf.generate(tmp_path / "text", resolution=32, n=4, seed=0, workers=1)
    assert read_metadata(root / "metadata" / "0.npy") == read_metadata(
        text_root / "metadata" / "0.npy"
    )


def test_same_output_for_any_worker_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pf, "BATCH_SIZE", 4)  # 3 batches of 4, 4 and 2 images
    one = pf.generate(tmp_path / "w1", resolution=32, n=10, seed=3, workers=1)
    two = pf.generate(tmp_path / "w2", resolution=32, n=10, seed=3, workers=2)
    assert sorted(p.name for p in (one / "metadata").iterdir()) == ["0.npy", "1.npy", "2.npy"]
    assert tree_bytes(one) == tree_bytes(two)
    other = pf.generate(tmp_path / "seed4", resolution=32, n=10, seed=4, workers=1)
    assert tree_bytes(one) != tree_bytes(other)


def test_independent_of_pythonhashseed(tmp_path: Path) -> None:
    trees = []
    for hashseed in ("1", "2"):
        out = tmp_path / hashseed
        code = (
            "from pathlib import Path; from s4lab.data.generators.pathfinder import generate; "
            f"generate(Path({str(out)!r}), 32, 3, 5, 1)"
        )
        env = {**os.environ, "PYTHONHASHSEED": hashseed}
        subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True)
        trees.append(tree_bytes(out / ROOT))
    assert trees[0] == trees[1] and len(trees[0]) == 4


def test_rerun_keeps_finished_batches(tmp_path: Path) -> None:
    root = pf.generate(tmp_path, resolution=32, n=3, seed=0, workers=1)
    meta = root / "metadata" / "0.npy"
    meta.write_text(meta.read_text())  # a marker that the batch is not rewritten below
    stamp = meta.stat().st_mtime_ns
    pf.generate(tmp_path, resolution=32, n=3, seed=1, workers=1)
    assert meta.stat().st_mtime_ns == stamp


@pytest.mark.parametrize(("resolution", "n", "half"), [(32, 12, 1), (128, 1, 2)])
def test_markers_visible(resolution: int, n: int, half: int) -> None:
    """Both markers are bright (2·half)² blocks (>= 70% of the image maximum) at their centres.

    The disk is centred on the pixel corner (as the original), so the block is rows and columns
    c − half .. c + half − 1. A 1-pixel paddle lights no such block; markers at the upstream HEAD
    bug's ~0.4% intensity would fail here.
    """
    rng = np.random.default_rng(0)
    for i in range(n):
        s = pf.sample(resolution, 14, i % 2, rng)
        for y, x in s.markers:
            block = s.image[max(y - half, 0) : y + half, max(x - half, 0) : x + half]
            assert block.min() >= 0.7 * 255, (s.markers, block)


def test_marker_disk_is_full_intensity() -> None:
    disk = pf.marker(pf.PARAMS[32], (16, 16))
    assert disk.max() == pytest.approx(1.0, abs=0.02)
    assert disk[15:17, 15:17].min() > 0.85 and disk[:10].max() == 0.0


def test_labels_balanced_per_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pf, "BATCH_SIZE", 10)
    root = pf.generate(tmp_path, resolution=32, n=20, seed=0, workers=1)
    for batch in ("0", "1"):
        labels = [label for _, _, label in read_metadata(root / "metadata" / f"{batch}.npy")]
        assert sorted(labels) == [0] * 5 + [1] * 5
        assert labels != [0, 1] * 5  # shuffled, not alternating


def test_intensity_conventions() -> None:
    """PF32: distractors (contrast 2.0) outshine targets (2.0 × 0.75) and markers (1.0)."""
    p = pf.PARAMS[32]
    assert p.snake_contrast > p.snake_contrast * p.paddle_contrast > 1.0
    image = pf.bytescale(np.array([[0.0, 0.5], [1.0, 2.0]]))
    assert image.tolist() == [[0, 64], [128, 255]]


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="resolution must be one of"):
        pf.generate(tmp_path, resolution=48, n=1, seed=0, workers=1)
    with pytest.raises(ValueError, match="difficulty must be one of"):
        pf.generate(tmp_path, resolution=32, n=1, seed=0, workers=1, difficulty="hard")
    with pytest.raises(ValueError, match="metadata_format must be"):
        pf.generate(tmp_path, resolution=32, n=1, seed=0, workers=1, metadata_format="csv")


@pytest.mark.slow
def test_balance_and_statistics_over_2000_images(tmp_path: Path) -> None:
    """Label balance within 2% of 50% over 2,000 images; intensity statistics near our reference.

    Reference (this generator, seed 0, 2,000 PF32 images; docs/pathfinder.md): mean intensity
    0.108 of 255, lit-pixel fraction 0.45.
    """
    root = pf.generate(tmp_path / "pathfinder", resolution=32, n=2000, seed=0, workers=2)
    dm = Pathfinder(str(tmp_path), val_split=0.0, test_split=0.0)
    dm.setup("fit")
    images = dm.data_train.dataset.images.float() / 255
    assert images.shape == (2000, 32, 32) and root.is_dir()
    assert abs(dm.data_train.dataset.labels.float().mean().item() - 0.5) <= 0.02
    assert 0.09 < images.mean().item() < 0.13
    assert 0.40 < (images > 0).float().mean().item() < 0.50
