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
    dm = Pathfinder(str(tmp_path / "pathfinder"), val_split=0.0, test_split=0.0)
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


def test_label_1_marks_both_ends_of_one_snake(monkeypatch: pytest.MonkeyPatch) -> None:
    """Label 1: origin and terminal tip of the same target snake; label 0: of different ones."""
    built, original = [], pf.two_snakes

    def two_snakes(*args):
        built.append(original(*args))  # the last one is the pair that sample() kept
        return built[-1]

    monkeypatch.setattr(pf, "two_snakes", two_snakes)
    rng = np.random.default_rng(2)
    for label in (1, 0, 1, 0):
        s = pf.sample(32, 6, label, rng)
        _, snakes, origins = built[-1]
        same = [(origins[k], snakes[k].tip) for k in (0, 1)]
        other = [(origins[k], snakes[1 - k].tip) for k in (0, 1)]
        assert s.markers in (same if label == 1 else other)
        assert snakes[0].tip != origins[0] and snakes[1].tip != origins[1]


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


# Full-canvas references, written the way the original code computes each quantity; the fast
# generator works on local windows and caches, and must agree with them exactly.


def grey_dilate_ref(image: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """out[p] = max over d of image[p + d] (outside pixels ignored), by explicit loops."""
    H, W = image.shape
    out = np.zeros_like(image)
    for y in range(H):
        for x in range(W):
            values = [
                image[y + dy, x + dx] for dy, dx in offsets if 0 <= y + dy < H and 0 <= x + dx < W
            ]
            out[y, x] = max(values, default=0)
    return out


def heads_ref(pivot: tuple[int, int], r: int, R: int) -> set[tuple[int, int]]:
    """The original's candidate heads: one sample per pixel of arc, truncated, in-bounds, unique."""
    angles = np.arange(0, 360, 360 / (2 * r * np.pi)) * np.pi / 180
    y, x = pivot[0] + r * np.sin(angles), pivot[1] + r * np.cos(angles)
    coords = np.stack([y, x], axis=1).astype(int)
    inside = (y < R) & (y >= 0) & (x < R) & (x >= 0)
    return {tuple(c) for c in np.unique(coords[inside], axis=0).tolist()}


def paste_ref(R: int, stamp: np.ndarray, center: tuple[int, int]) -> np.ndarray:
    """The stamp assigned into a zero R x R canvas at `center`, clipped at the borders."""
    h = stamp.shape[0] // 2
    canvas = np.zeros((R + 2 * h, R + 2 * h))
    canvas[center[0] : center[0] + 2 * h + 1, center[1] : center[1] + 2 * h + 1] = stamp
    return canvas[h : h + R, h : h + R]


@pytest.mark.parametrize("resolution", [32, 128])
def test_dilations_match_full_canvas_reference(resolution: int) -> None:
    rng = np.random.default_rng(0)
    g = pf.paddles(resolution, pf.PARAMS[resolution].paddle_margins[-1])
    occupancy = (rng.random((24, 24)) < 0.05).astype(float)
    for theta in (0.0, 0.7, -2.3):
        offsets = g.seed_offsets(theta)
        assert len(offsets) > 0
        expected = grey_dilate_ref(occupancy, offsets) > 0
        np.testing.assert_array_equal(pf.dilate(occupancy > 0, offsets), expected)
    canvas = pf.Canvas(g)
    canvas.mask[...] = rng.random(canvas.mask.shape) * (rng.random(canvas.mask.shape) < 0.1)
    points = rng.integers(0, resolution, size=(200, 2))
    full = grey_dilate_ref(canvas.mask, g.disk)
    np.testing.assert_array_equal(canvas.dilated_at(points), full[points[:, 0], points[:, 1]])


@pytest.mark.parametrize(("resolution", "margin"), [(32, 1), (128, 2), (128, 3)])
def test_candidate_heads_match_reference(resolution: int, margin: int) -> None:
    g = pf.paddles(resolution, margin)
    r = g.l + margin
    for pivot in [
        (0, 0),
        (1, resolution - 2),
        (resolution // 2, 3),
        (resolution - 1, resolution // 3),
    ]:
        heads = g.heads + np.array(pivot)
        inside = np.all((heads >= 0) & (heads < resolution), axis=1)
        assert {tuple(h) for h in heads[inside].tolist()} == heads_ref(pivot, r, resolution)


def test_windowed_paddles_match_full_canvas_paste() -> None:
    g = pf.paddles(32, 1)
    for center, theta in [((0, 0), 0.5), ((31, 5), -1.0), ((16, 30), 3.0), ((10, 12), -3.1)]:
        canvas = pf.Canvas(g)
        occupancy = canvas.mask.copy()
        canvas.draw(center, theta, 1.5)
        canvas.occupy((center, theta))
        line, mask = g.stamp(theta)
        np.testing.assert_array_equal(canvas.image, paste_ref(32, 1.5 * line, center))
        np.testing.assert_array_equal(
            canvas.mask, np.maximum(occupancy, paste_ref(32, mask, center))
        )
        fits = np.max(occupancy + paste_ref(32, mask, center)) < pf.OVERLAP
        assert pf.Canvas(g).fits(center, theta) == fits


def test_paddle_stamp_drawn_from_its_centre() -> None:
    """The line starts at the stamp centre and points along θ = atan2(dy, dx)."""
    g = pf.paddles(128, 2)
    for theta in (0.0, np.pi / 2, -np.pi / 2, np.pi - 0.01):
        line, mask = g.stamp(theta)
        c = g.half
        ys, xs = np.nonzero(line > 0.5)
        assert line[c, c] > 0.3 and mask[c, c] > 0.9
        direction = np.array([np.sin(theta), np.cos(theta)])
        along = (np.stack([ys - c, xs - c], axis=1) @ direction).mean()
        assert along > 1.0  # the bright pixels lie ahead of the centre


@pytest.mark.slow
def test_balance_and_statistics_over_2000_images(tmp_path: Path) -> None:
    """Label balance within 2% of 50% over 2,000 images; intensity statistics near our reference.

    Reference (this generator, seed 0, 2,000 PF32 images; docs/pathfinder.md): mean intensity
    0.108 of 255, lit-pixel fraction 0.45.
    """
    root = pf.generate(tmp_path / "pathfinder", resolution=32, n=2000, seed=0, workers=2)
    dm = Pathfinder(str(tmp_path / "pathfinder"), val_split=0.0, test_split=0.0)
    dm.setup("fit")
    images = dm.data_train.dataset.images.float() / 255
    assert images.shape == (2000, 32, 32) and root.is_dir()
    assert abs(dm.data_train.dataset.labels.float().mean().item() - 0.5) <= 0.02
    assert 0.09 < images.mean().item() < 0.13
    assert 0.40 < (images > 0).float().mean().item() < 0.50
