"""Pathfinder / Path-X generator: the published snakes-of-paddles algorithm, rewritten for speed.

Notation: R window, ℓ paddle length, w thickness, m margin, s antialias scale, c continuity,
dir(θ) = (sin θ, cos θ) in (y, x), translate(p, θ, d) = ceil(p + d·dir(θ)).
Paddle at p, angle θ: the line p -> p + ℓ·dir(θ), width w·s, drawn at s× resolution and
Lanczos-downsampled (intensity × contrast); its occupancy mask is that line dilated by a disk of
radius m·s, downsampled the same way.
Seed: tail uniform over the free pixels of the occupancy dilated by the paddle's own mask;
head = translate(tail, θ, ℓ); pivot = translate(head, θ + π, ℓ + m).
Extension: pivot' = translate(pivot, θ, ℓ + 2m); heads h on the circle |h − pivot'| = ℓ + m with
P(h) ∝ (1 − dilate_m(occupancy)(h)) · max(cos(min(|Δθ|·c, π/2)), 0)²; a paddle is drawn from h
back to pivot' and rejected if max(occupancy + its mask) ≥ 1.8. The previous paddle's mask joins
the occupancy only then, so consecutive paddles may touch.
Label: two target snakes start one seed distance apart; markers sit on the origin tip of one and
on the terminal tip of the same snake (label 1) or of the other one (label 0).
Intensities: targets = snake × paddle contrast, distractors = snake contrast, markers = 1; every
image is byte-scaled min -> 0, max -> 255 as the original `scipy.misc.imsave` did.

Same sampling law as the original (github.com/drewlinsley/pathfinder, `snakes2.py`), including
its quirks, except that labels are balanced per batch instead of drawn one coin flip at a time.
Speed comes from cached paddle stamps, work on local windows and boolean dilations.
Upstream HEAD draws invisible markers (its resize no longer byte-scales the disk); here the disk
is scaled to 255 before the resize, as the original `scipy.misc.imresize` did.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageDraw

BATCH_SIZE = 1000  # images per imgs/<batch>/ folder and metadata/<batch>.npy file
CONTOUR_LENGTHS = {"curv_baseline": 6, "curv_contour_length_9": 9, "curv_contour_length_14": 14}
MAX_DISTRACTOR_RETRIAL = 4
MAX_PADDLE_RETRIAL = 2
OVERLAP = 1.8  # occupancy + new mask at or above this is a crossing
FREE = 0.3  # a pixel whose occupancy is at most this is free for a seed


@dataclass(frozen=True)
class PathfinderParams:
    """Per-resolution generator arguments of the LRA release (LRA `data/pathfinder.py`)."""

    window: int
    padding: int
    antialias_scale: int
    paddle_margins: tuple[int, ...]
    seed_distance: int
    marker_radius: float
    paddle_length: int
    paddle_thickness: float
    continuity: float
    snake_contrast: float
    paddle_contrast: float
    distractor_paddles: int  # total paddles in distractor snakes, split into snakes per difficulty


PARAMS = {  # window, padding, s, margins, seed distance, marker radius, ℓ, w, c, contrasts, Σ
    32: PathfinderParams(32, 1, 2, (1,), 7, 1.5, 2, 0.5, 1.0, 2.0, 0.75, 20),
    64: PathfinderParams(64, 1, 2, (1,), 12, 2.5, 5, 1.0, 1.8, 0.8, 1.0, 22),
    128: PathfinderParams(128, 1, 2, (2, 3), 20, 3.0, 5, 1.5, 1.8, 0.9, 1.0, 35),
    256: PathfinderParams(256, 22, 2, (3,), 27, 5.0, 5, 2.0, 1.8, 1.0, 1.0, 30),
}


def translate(p: tuple[int, int], theta: float, d: float) -> tuple[int, int]:
    """ceil(p + d·(sin θ, cos θ)) in (y, x), the original's rounding."""
    return math.ceil(p[0] + d * math.sin(theta)), math.ceil(p[1] + d * math.cos(theta))


def flip(theta: float) -> float:
    """θ ± π, kept in [−π, π)."""
    return theta + math.pi if theta < 0 else theta - math.pi


def disk_offsets(r: float) -> np.ndarray:
    """(K, 2) integer offsets (dy, dx) with dy² + dx² <= r²."""
    k = int(math.floor(r))
    dy, dx = np.mgrid[-k : k + 1, -k : k + 1]
    inside = dy**2 + dx**2 <= r**2
    return np.stack([dy[inside], dx[inside]], axis=1)


def dilate(occupied: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """out[p] = OR over d in offsets of occupied[p + d]; pixels outside the image are ignored."""
    H, W = occupied.shape
    out = np.zeros_like(occupied)
    for dy, dx in offsets.tolist():
        y0, y1, x0, x1 = max(0, -dy), H - max(0, dy), max(0, -dx), W - max(0, dx)
        if y0 < y1 and x0 < x1:
            out[y0:y1, x0:x1] |= occupied[y0 + dy : y1 + dy, x0 + dx : x1 + dx]
    return out


def window(center: tuple[int, int], half: int, size: int) -> tuple[slice, slice, slice, slice]:
    """Slices (canvas rows, cols, stamp rows, cols) that paste a (2h+1)² stamp at `center`."""
    (y, x), n = center, 2 * half + 1
    y0, x0 = y - half, x - half
    cy0, cx0 = max(y0, 0), max(x0, 0)
    cy1, cx1 = min(y0 + n, size), min(x0 + n, size)
    return (
        slice(cy0, cy1),
        slice(cx0, cx1),
        slice(cy0 - y0, cy1 - y0),
        slice(cx0 - x0, cx1 - x0),
    )


def lanczos(big: np.ndarray, size: int) -> np.ndarray:
    """Downsample a uint8 image to size² with PIL's Lanczos filter; floats in [0, 1]."""
    small = Image.fromarray(big).resize((size, size), Image.Resampling.LANCZOS)
    return np.asarray(small, dtype=np.float64) / 255.0


class Paddles:
    """Cached paddle stamps, seed structures and candidate heads for one (resolution, margin)."""

    def __init__(self, p: PathfinderParams, margin: int) -> None:
        if p.paddle_thickness * p.antialias_scale != round(p.paddle_thickness * p.antialias_scale):
            raise ValueError("paddle_thickness × antialias_scale must be an integer")
        self.p, self.m, self.l = p, margin, p.paddle_length
        self.half = self.l + math.ceil(p.paddle_thickness) + margin  # stamp is (2·half + 1)²
        self.disk = disk_offsets(margin)
        self.disk_flat = self.disk[:, 0] * (p.window + 2 * margin) + self.disk[:, 1]  # in a Canvas
        self.big_disk = disk_offsets(margin * p.antialias_scale)
        r = self.l + margin
        angles = np.arange(0, 360, 360 / (2 * r * math.pi)) * math.pi / 180
        disp = np.floor(np.stack([r * np.sin(angles), r * np.cos(angles)], axis=1))
        self.heads = np.unique(disp.astype(np.int64), axis=0)  # (C, 2) one per pixel of arc
        self.head_angles = np.arctan2(self.heads[:, 0], self.heads[:, 1])
        self._stamps: dict[float, tuple[np.ndarray, np.ndarray]] = {}
        self._weights: dict[float, np.ndarray] = {}
        self._seed_offsets: dict[float, np.ndarray] = {}
        self._first_tails: dict[float, np.ndarray] = {}

    def stamp(self, theta: float) -> tuple[np.ndarray, np.ndarray]:
        """(line, mask), each (2·half + 1)², for a paddle from the centre at angle θ."""
        if theta not in self._stamps:
            s, h = self.p.antialias_scale, self.half
            c = h * s
            hy, hx = translate((c, c), theta, self.l * s)
            big = Image.new("L", (2 * c + 1, 2 * c + 1), 0)
            width = round(self.p.paddle_thickness * s)
            ImageDraw.Draw(big).line([(c, c), (hx, hy)], fill=255, width=width)
            line = np.asarray(big) > 0
            mask = dilate(line, self.big_disk)
            size = 2 * h + 1
            self._stamps[theta] = (
                lanczos(line.astype(np.uint8) * 255, size),
                lanczos(mask.astype(np.uint8) * 255, size),
            )
        return self._stamps[theta]

    def weights(self, theta: float) -> np.ndarray:
        """(C,) continuity weights max(cos(min(|Δθ|·c, π/2)), 0)² of the candidate heads."""
        if theta not in self._weights:
            d = np.abs(self.head_angles - theta)
            d = np.minimum(np.minimum(d, 2 * np.pi - d) * self.p.continuity, np.pi / 2)
            self._weights[theta] = np.maximum(np.cos(d), 0.0) ** 2
        return self._weights[theta]

    def seed_offsets(self, theta: float) -> np.ndarray:
        """Dilation offsets of the seed structure: the paddle mask's full-intensity pixels.

        As in the original: the mask is pasted at (ℓ+m+1, ℓ+m+1) into a (2(ℓ+m)+1)² canvas whose
        anchor is its centre, and only pixels equal to 1 count.
        """
        if theta not in self._seed_offsets:
            k = self.l + self.m
            canvas = np.zeros((2 * k + 1, 2 * k + 1))
            ys, xs, sy, sx = window((k + 1, k + 1), self.half, 2 * k + 1)
            canvas[ys, xs] = self.stamp(theta)[1][sy, sx]
            self._seed_offsets[theta] = np.argwhere(canvas >= 1.0) - k
        return self._seed_offsets[theta]

    def first_tails(self, theta: float) -> np.ndarray:
        """Flat indices of the free tails of the first target seed (its occupancy is fixed)."""
        if theta not in self._first_tails:
            R, b = self.p.window, max(self.p.padding, 2 * self.p.seed_distance)
            occupied = np.ones((R, R), dtype=bool)
            occupied[b : R - b, b : R - b] = False
            free = ~dilate(occupied, self.seed_offsets(theta))
            self._first_tails[theta] = np.flatnonzero(free)
        return self._first_tails[theta]


@cache
def paddles(resolution: int, margin: int) -> Paddles:
    """The process-wide cache of paddle geometry for one (resolution, margin)."""
    return Paddles(PARAMS[resolution], margin)


@dataclass
class Snake:
    """Growth state of one snake: its pivot, heading θ, unoccupied newest paddle and free end."""

    pivot: tuple[int, int]
    theta: float
    last: tuple[tuple[int, int], float]  # (centre, angle) of the newest paddle, not yet occupied
    tip: tuple[int, int]


class Canvas:
    """Image and occupancy of one sample; the occupancy has a zero border for dilation lookups."""

    def __init__(self, g: Paddles) -> None:
        R, pad, b = g.p.window, g.p.padding, g.m
        self.g, self.R, self.b = g, R, b
        self.image = np.zeros((R, R))
        self._occupancy = np.zeros((R + 2 * b, R + 2 * b))
        self.mask = self._occupancy[b : b + R, b : b + R]  # view: the R × R occupancy
        self.mask[:pad] = self.mask[-pad:] = 1.0
        self.mask[:, :pad] = self.mask[:, -pad:] = 1.0

    def inside(self, q: tuple[int, int]) -> bool:
        return 0 <= q[0] < self.R and 0 <= q[1] < self.R

    def draw(self, center: tuple[int, int], theta: float, contrast: float) -> None:
        ys, xs, sy, sx = window(center, self.g.half, self.R)
        line = contrast * self.g.stamp(theta)[0][sy, sx]
        np.maximum(self.image[ys, xs], line, out=self.image[ys, xs])

    def occupy(self, paddle: tuple[tuple[int, int], float]) -> None:
        ys, xs, sy, sx = window(paddle[0], self.g.half, self.R)
        np.maximum(self.mask[ys, xs], self.g.stamp(paddle[1])[1][sy, sx], out=self.mask[ys, xs])

    def fits(self, center: tuple[int, int], theta: float) -> bool:
        ys, xs, sy, sx = window(center, self.g.half, self.R)
        return bool(np.max(self.mask[ys, xs] + self.g.stamp(theta)[1][sy, sx]) < OVERLAP)

    def dilated_at(self, points: np.ndarray) -> np.ndarray:
        """(C,) occupancy dilated by the margin disk (a max filter) at in-image points (C, 2)."""
        W = self._occupancy.shape[1]
        centres = (points[:, 0] + self.b) * W + points[:, 1] + self.b  # (C,) bordered, flat
        return self._occupancy.ravel()[centres[:, None] + self.g.disk_flat].max(axis=1)

    def seed_ends(self, tail: tuple[int, int], theta: float) -> tuple[int, int] | None:
        """The pivot of a seed paddle at `tail`, or None if its head or pivot leaves the image."""
        head = translate(tail, theta, self.g.l)
        pivot = translate(head, flip(theta), self.g.l + self.g.m)
        return pivot if self.inside(head) and self.inside(pivot) else None

    def extend(self, snake: Snake, contrast: float, rng: np.random.Generator) -> bool:
        """Add one paddle to `snake` by the continuity-weighted law; False on a dead end."""
        g, R = self.g, self.R
        pivot = translate(snake.pivot, snake.theta, g.l + 2 * g.m)
        heads = g.heads + np.array(pivot)
        ok = np.all((heads >= 0) & (heads < R), axis=1)
        if not ok.any():
            return False
        heads, angles = heads[ok], g.head_angles[ok]
        pmf = (1.0 - self.dilated_at(heads)) * g.weights(snake.theta)[ok]
        total = pmf.sum()
        if total < 1e-4:
            return False
        cmf = np.cumsum(pmf / total)
        for _ in range(MAX_PADDLE_RETRIAL + 1):
            i = min(int(np.searchsorted(cmf, rng.random(), side="right")), len(cmf) - 1)
            head, theta = (int(heads[i, 0]), int(heads[i, 1])), float(angles[i])
            back = flip(theta)
            if self.fits(head, back):
                self.draw(head, back, contrast)
                self.occupy(snake.last)
                snake.pivot, snake.theta, snake.last, snake.tip = pivot, theta, (head, back), head
                return True
        return False

    def seed_distractor(self, contrast: float, rng: np.random.Generator) -> Snake | None:
        """First paddle of a distractor at a free tail; None if the image is (nearly) full."""
        if np.count_nonzero(self.mask <= FREE) < 0.01 * self.R**2:
            return None
        occupied = self.mask > FREE
        occupied[0] = occupied[-1] = occupied[:, 0] = occupied[:, -1] = True
        for _ in range(MAX_PADDLE_RETRIAL + 1):
            theta = int(rng.integers(-180, 180)) * math.pi / 180
            tails = np.flatnonzero(~dilate(occupied, self.g.seed_offsets(theta)))
            if len(tails) == 0:
                return None
            tail = divmod(int(tails[rng.integers(len(tails))]), self.R)
            pivot = self.seed_ends(tail, theta)
            if pivot is not None:
                self.draw(tail, theta, contrast)
                return Snake(pivot, theta, (tail, theta), tail)
        return None

    def add_distractor(self, length: int, contrast: float, rng: np.random.Generator) -> bool:
        """One distractor snake of `length` paddles; on failure the canvas is left unchanged."""
        image, occupancy = self.image.copy(), self._occupancy.copy()
        snake = self.seed_distractor(contrast, rng)
        if snake is not None and all(self.extend(snake, contrast, rng) for _ in range(length - 1)):
            self.occupy(snake.last)
            return True
        self.image[...], self._occupancy[...] = image, occupancy
        return False


def two_snakes(
    g: Paddles, length: int, rng: np.random.Generator
) -> tuple[Canvas, list[Snake], list[tuple[int, int]]] | None:
    """(canvas, snakes, origin tips) of two target snakes grown in lockstep; None on a failure."""
    p = g.p
    canvas = Canvas(g)
    contrast = p.snake_contrast * p.paddle_contrast
    for _ in range(MAX_PADDLE_RETRIAL + 1):
        theta1 = int(rng.integers(-180, 180)) * math.pi / 180
        tails = g.first_tails(theta1)
        if len(tails) == 0:
            return None
        tail1 = divmod(int(tails[rng.integers(len(tails))]), p.window)
        pivot1 = canvas.seed_ends(tail1, theta1)
        if pivot1 is not None:
            break
    else:
        return None
    for _ in range(MAX_PADDLE_RETRIAL + 1):
        theta2 = int(rng.integers(-180, 180)) * math.pi / 180
        phi = int(rng.integers(0, 360)) * math.pi / 180
        tail2 = (
            int(np.round(tail1[0] + p.seed_distance * math.sin(phi))),
            int(np.round(tail1[1] + p.seed_distance * math.cos(phi))),
        )
        pivot2 = canvas.seed_ends(tail2, theta2)
        if pivot2 is not None:
            break
    else:
        return None
    canvas.draw(tail1, theta1, contrast)
    canvas.draw(tail2, theta2, contrast)
    snakes = [
        Snake(pivot1, theta1, (tail1, theta1), tail1),
        Snake(pivot2, theta2, (tail2, theta2), tail2),
    ]
    for _ in range(length - 1):
        for snake in snakes:
            if not canvas.extend(snake, contrast, rng):
                return None
    canvas.occupy(snakes[1].last)  # as the original: snake 0's last paddle stays unoccupied
    return canvas, snakes, [tail1, tail2]


def marker(p: PathfinderParams, center: tuple[int, int]) -> np.ndarray:
    """(R, R) disk of `marker_radius` at `center`, drawn at s× and Lanczos-downsampled."""
    R, s = p.window, p.antialias_scale
    y, x = np.ogrid[: R * s, : R * s]
    disk = (y - center[0] * s) ** 2 + (x - center[1] * s) ** 2 <= (p.marker_radius * s) ** 2
    return lanczos(disk.astype(np.uint8) * 255, R)


def bytescale(image: np.ndarray) -> np.ndarray:
    """uint8 image with min -> 0 and max -> 255, rounded half up (scipy's old `bytescale`)."""
    lo, hi = float(image.min()), float(image.max())
    scaled = (image - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(image)
    return np.floor(scaled + 0.5).clip(0, 255).astype(np.uint8)


class Sample(NamedTuple):
    image: np.ndarray  # (R, R) uint8
    label: int  # 1: the markers sit on the same snake
    margin: int
    markers: tuple[tuple[int, int], tuple[int, int]]  # (origin, terminal) centres, (y, x)


def sample(resolution: int, contour_length: int, label: int, rng: np.random.Generator) -> Sample:
    """One Pathfinder image of the given label, with its paddle margin and marker centres."""
    p = PARAMS[resolution]
    margin = p.paddle_margins[int(rng.integers(len(p.paddle_margins)))]
    g = paddles(resolution, margin)
    targets = None
    while targets is None:  # the original restarts the pair until both snakes are complete
        targets = two_snakes(g, contour_length, rng)
    canvas, snakes, origins = targets
    distractor_length = contour_length // 3
    for _ in range(p.distractor_paddles // distractor_length):
        for _ in range(MAX_DISTRACTOR_RETRIAL + 1):
            if canvas.add_distractor(distractor_length, p.snake_contrast, rng):
                break
    origin_snake = int(rng.integers(0, 2))
    terminal_snake = origin_snake if label == 1 else 1 - origin_snake
    centres = (origins[origin_snake], snakes[terminal_snake].tip)
    markers = np.maximum(marker(p, centres[0]), marker(p, centres[1]))
    return Sample(bytescale(np.maximum(canvas.image, markers)), label, margin, centres)


def metadata_row(
    batch: int, i: int, label: int, resolution: int, contour_length: int, margin: int
) -> list[str]:
    """The 11 published metadata fields of one image (see data_formats.md §1.6)."""
    p = PARAMS[resolution]
    return [
        f"imgs/{batch}",
        f"sample_{i}.png",
        str(i),
        str(label),
        str(p.continuity),
        str(contour_length),
        str(contour_length // 3),
        str(p.paddle_length),
        str(p.paddle_thickness),
        str(margin),
        "1",  # number of paddle contrasts
    ]


def write_batch(
    root: Path,
    resolution: int,
    contour_length: int,
    batch: int,
    n: int,
    seed: int,
    metadata_format: str,
) -> int:
    """Write imgs/<batch>/sample_<i>.png and metadata/<batch>.npy; skip a finished batch.

    The batch's RNG depends only on (seed, batch), so the output is the same for any worker count.
    Labels are a random permutation of a balanced list (the original draws each label by a coin
    flip); given its label, every image follows the original law.
    """
    meta = root / "metadata" / f"{batch}.npy"
    if meta.exists():
        return 0
    rng = np.random.default_rng(np.random.SeedSequence([seed, batch]))
    labels = rng.permutation(np.arange(n) % 2).tolist()  # balanced; the original draws each
    (root / "imgs" / str(batch)).mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        image, label, margin, _ = sample(resolution, contour_length, labels[i], rng)
        Image.fromarray(image).save(root / "imgs" / str(batch) / f"sample_{i}.png")
        rows.append(metadata_row(batch, i, label, resolution, contour_length, margin))
    meta.parent.mkdir(parents=True, exist_ok=True)
    tmp = meta.with_suffix(f".tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        if metadata_format == "npy":  # the upstream generator: np.save of a string array
            np.save(f, np.array(rows, dtype="<U32"))
        else:  # the LRA release: plain text lines despite the .npy name
            f.write("".join(" ".join(row) + "\n" for row in rows).encode())
    tmp.replace(meta)
    return n


def _write_batch_args(args: tuple) -> int:
    return write_batch(*args)


def generate(
    out_dir: Path,
    resolution: int,
    n: int,
    seed: int,
    workers: int,
    difficulty: str = "curv_contour_length_14",
    metadata_format: str = "text",
) -> Path:
    """Write n images to `out_dir/pathfinder<resolution>/<difficulty>/` in the published layout.

    `out_dir` is the `pathfinder/` folder under the data root. Batches of 1000 images, each with
    its own seed, run on `workers` processes; finished batches are kept, so a rerun resumes.
    `metadata_format`: "text" (the LRA release) or "npy" (the upstream generator). Returns the
    difficulty folder.
    """
    if resolution not in PARAMS:
        raise ValueError(f"resolution must be one of {sorted(PARAMS)}, got {resolution}")
    if difficulty not in CONTOUR_LENGTHS:
        raise ValueError(f"difficulty must be one of {sorted(CONTOUR_LENGTHS)}, got {difficulty!r}")
    if metadata_format not in ("text", "npy"):
        raise ValueError(f"metadata_format must be 'text' or 'npy', got {metadata_format!r}")
    root = Path(out_dir) / f"pathfinder{resolution}" / difficulty
    sizes = [min(BATCH_SIZE, n - start) for start in range(0, n, BATCH_SIZE)]
    jobs = [
        (root, resolution, CONTOUR_LENGTHS[difficulty], b, size, seed, metadata_format)
        for b, size in enumerate(sizes)
    ]
    if workers > 1:
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            done = pool.imap_unordered(_write_batch_args, jobs)
            for k, _ in enumerate(done, start=1):
                print(f"{root}: batch {k}/{len(jobs)}", file=sys.stderr)
    else:
        for k, job in enumerate(jobs, start=1):
            write_batch(*job)
            print(f"{root}: batch {k}/{len(jobs)}", file=sys.stderr)
    return root
