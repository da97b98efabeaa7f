"""Statistics and a labelled sample grid of a Pathfinder / Path-X set in the published layout.

    python scripts/pathfinder_stats.py [--data-dir data] [--resolution 32] [--grid out.png]
    python scripts/pathfinder_stats.py --generate 2000 [--seed 0] [--workers 2] --grid out.png

Reads `<data-dir>/pathfinder/pathfinder<R>/<difficulty>/` with the datamodule's own reader (or first
generates `--generate N` images into a temporary folder, timing the generator) and prints the
image count, the positive-label fraction, the mean intensity (fraction of 255) and the fraction of
lit pixels (> 0). `--grid` writes the first `--n-grid` images, enlarged, each over its label.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from s4lab.data.generators.pathfinder import CONTOUR_LENGTHS, generate
from s4lab.data.pathfinder import Pathfinder, decode_png


def statistics(images: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Positive fraction, mean intensity / 255 and lit-pixel fraction of uint8 (N, R, R) images."""
    return {
        "images": float(len(labels)),
        "positive_fraction": float(labels.mean()),
        "mean_intensity": float(images.mean() / 255.0),
        "lit_fraction": float((images > 0).mean()),
    }


def sample_grid(images: np.ndarray, labels: np.ndarray, columns: int = 4) -> Image.Image:
    """Tiles enlarged to ~256 px (nearest neighbour), each above a caption with its label."""
    R = images.shape[1]
    scale, caption, gap = max(1, 256 // R), 16, 4
    tile = R * scale
    rows = -(-len(images) // columns)
    grid = Image.new("L", (columns * (tile + gap), rows * (tile + caption + gap)), 64)
    draw = ImageDraw.Draw(grid)
    for n, (image, label) in enumerate(zip(images, labels, strict=True)):
        x, y = (n % columns) * (tile + gap), (n // columns) * (tile + caption + gap)
        grid.paste(Image.fromarray(image).resize((tile, tile), Image.Resampling.NEAREST), (x, y))
        text = "label 1: connected" if label == 1 else "label 0: not connected"
        draw.text((x + 2, y + tile + 2), text, fill=255)
    return grid


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data-dir", type=Path, default=Path("data"))
    p.add_argument("--resolution", type=int, default=32)
    p.add_argument("--difficulty", default="curv_contour_length_14", choices=list(CONTOUR_LENGTHS))
    p.add_argument("--generate", type=int, metavar="N", help="generate N images first (temp dir)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--grid", type=Path, help="write a PNG grid of samples with their labels")
    p.add_argument("--n-grid", type=int, default=16)
    args = p.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = args.data_dir
        if args.generate:
            data_dir = Path(tmp)
            start = time.perf_counter()
            generate(
                data_dir / "pathfinder",
                args.resolution,
                args.generate,
                args.seed,
                args.workers,
                difficulty=args.difficulty,
            )
            seconds = time.perf_counter() - start
            rate = args.generate / seconds
            print(f"generated {args.generate} images in {seconds:.1f} s: {rate:.1f} images/s")
            print(f"  ({rate / args.workers:.1f} images/s per worker, {args.workers} workers)")
        dm = Pathfinder(
            str(data_dir / "pathfinder"), resolution=args.resolution, difficulty=args.difficulty
        )
        samples = dm.samples()
        images = np.stack([decode_png(path, args.resolution) for path, _ in samples])
        labels = np.array([label for _, label in samples])
        print(f"{dm.root}:")
        for key, value in statistics(images, labels).items():
            print(f"  {key}: {value:.4g}")
        if args.grid:
            args.grid.parent.mkdir(parents=True, exist_ok=True)
            sample_grid(images[: args.n_grid], labels[: args.n_grid]).save(args.grid)
            print(f"wrote {args.grid}")


if __name__ == "__main__":
    main()
