"""CIFAR-10 pickles -> LRA Image (grayscale) and sequential CIFAR (color), on tiny fixtures."""

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY, train_checked
from PIL import Image

from s4lab.data.base import MissingDataError
from s4lab.data.cifar import CIFAR10, random_crop_flip, read_batch

N_PER_BATCH = 4  # 5 train batches -> 20 train images; 4 test images


def write_cifar(root: Path, seed: int = 0) -> tuple[np.ndarray, list[int]]:
    """Write data_batch_1..5 and test_batch in the published dict layout; return the test batch."""
    folder = root / "cifar" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (N_PER_BATCH, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, N_PER_BATCH).tolist()
        batch = {
            b"batch_label": name.encode(),
            b"labels": labels,
            b"data": data,
            b"filenames": [f"img_{i}.png".encode() for i in range(N_PER_BATCH)],
        }
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f, protocol=2)
    return data, labels  # the last one written: test_batch


@pytest.fixture
def cifar_root(tmp_path: Path) -> tuple[Path, np.ndarray, list[int]]:
    data, labels = write_cifar(tmp_path)
    return tmp_path, data, labels


def datamodule(root: Path, **kwargs) -> CIFAR10:
    dm = CIFAR10(data_dir=str(root / "cifar"), batch_size=4, **kwargs)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def test_color_sequence_is_planar_pixels_in_hw_order(cifar_root):
    root, data, labels = cifar_root
    dm = datamodule(root)
    assert (dm.d_input, dm.d_output, dm.l_max, dm.vocab_size) == (3, 10, 1024, None)
    x, y = dm.data_test[1]
    assert x.shape == (1024, 3) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert int(y) == labels[1]
    mean, std = torch.tensor([0.4914, 0.4822, 0.4465]), torch.tensor([0.247, 0.243, 0.261])
    pixels = x * std + mean  # undo the official per-channel normalization -> [0, 1]
    h, w = 5, 17
    for c in range(3):  # pixel (h, w) of channel c sits at c * 1024 + 32 h + w in the pickle
        assert pixels[32 * h + w, c].item() == pytest.approx(data[1, c * 1024 + 32 * h + w] / 255)
    expected = torch.tensor(data[1].reshape(3, 1024).T / 255, dtype=torch.float32)
    torch.testing.assert_close(pixels, expected, atol=1e-6, rtol=0)


def test_grayscale_matches_pil_and_official_normalization(cifar_root):
    root, data, _ = cifar_root
    dm = datamodule(root, grayscale=True)
    assert (dm.d_input, dm.l_max) == (1, 1024)
    for i in range(N_PER_BATCH):
        x, _ = dm.data_test[i]
        assert x.shape == (1024, 1)
        hwc = data[i].reshape(3, 32, 32).transpose(1, 2, 0)
        gray = np.asarray(Image.fromarray(hwc).convert("L"), dtype=np.float64).reshape(1024)
        # x = (gray / 255 - 122.6 / 255) / (61.0 / 255) = (gray - 122.6) / 61
        expected = torch.tensor((gray - 122.6) / 61.0, dtype=torch.float32)
        torch.testing.assert_close(x[:, 0], expected, atol=1e-5, rtol=0)


def test_validation_split_is_seeded_and_disjoint(cifar_root):
    root, _, _ = cifar_root
    a, b = datamodule(root, grayscale=True), datamodule(root, grayscale=True, seed=7)
    assert (len(a.data_train), len(a.data_val), len(a.data_test)) == (18, 2, 4)  # int(20 * 0.9)
    # the split seed is fixed (42, as the official loader), not the run's seed
    torch.testing.assert_close(a.data_val.images, b.data_val.images)
    train = {bytes(im.numpy()) for im in a.data_train.images}
    val = {bytes(im.numpy()) for im in a.data_val.images}
    assert len(train | val) == 20 and not train & val
    dm = datamodule(root, val_split=0.25)
    assert (len(dm.data_train), len(dm.data_val)) == (15, 5)


def test_split_is_the_official_seed_42_permutation(cifar_root):
    """random_split(train, [int(0.9 n), rest], seed 42) = randperm(n) cut in order."""
    root, _, _ = cifar_root
    dm = datamodule(root)
    folder = root / "cifar" / "cifar-10-batches-py"
    images = torch.cat([read_batch(folder / f"data_batch_{i}")[0] for i in range(1, 6)])
    perm = torch.randperm(20, generator=torch.Generator().manual_seed(42))
    assert torch.equal(dm.data_train.images, images[perm[:18]])
    assert torch.equal(dm.data_val.images, images[perm[18:]])


def test_batches_from_loader(cifar_root):
    root, _, _ = cifar_root
    x, y = next(iter(datamodule(root).train_dataloader()))
    assert x.shape == (4, 1024, 3) and y.shape == (4,) and y.dtype == torch.int64


def test_augmentation_is_a_symmetric_padded_crop_or_its_flip():
    image = torch.arange(3 * 32 * 32, dtype=torch.float32).view(3, 32, 32)
    padded = torch.from_numpy(np.pad(image.numpy(), ((0, 0), (4, 4), (4, 4)), mode="symmetric"))
    g = torch.Generator().manual_seed(0)
    seen = set()
    for _ in range(20):
        out = random_crop_flip(image, g)
        assert out.shape == (3, 32, 32)
        windows = {
            (top, left, flip): crop.flip(-1) if flip else crop
            for top in range(9)
            for left in range(9)
            for flip in (False, True)
            for crop in [padded[:, top : top + 32, left : left + 32]]
        }
        matches = [key for key, window in windows.items() if torch.equal(out, window)]
        assert len(matches) == 1
        seen.add(matches[0])
    assert {flip for _, _, flip in seen} == {False, True}
    assert len({(t, l) for t, l, _ in seen}) > 10  # offsets spread over the 9 x 9 range


def test_augment_touches_only_the_training_split(cifar_root):
    root, _, _ = cifar_root
    dm = datamodule(root, augment=True)
    assert dm.data_train.augment and not dm.data_val.augment and not dm.data_test.augment
    torch.manual_seed(0)
    views = {dm.data_train[0][0].sum().item() for _ in range(10)}
    assert len(views) > 1


def test_missing_dataset_names_path_and_prepare_command(tmp_path):
    with pytest.raises(MissingDataError) as e:
        CIFAR10(data_dir=str(tmp_path / "cifar")).prepare_data()
    assert "cifar-10-batches-py/data_batch_1" in str(e.value)
    assert "python scripts/prepare_data.py cifar" in str(e.value)


def test_truncated_batch_names_the_file(cifar_root):
    root, _, _ = cifar_root
    path = root / "cifar" / "cifar-10-batches-py" / "data_batch_3"
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(ValueError, match="data_batch_3.*corrupt or truncated"):
        datamodule(root)


def test_wrong_format_says_what_was_expected(tmp_path):
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": np.zeros((2, 1024), np.uint8), b"labels": [0, 1]}))
    with pytest.raises(
        ValueError, match=r"data_batch_1: b'data' must be uint8 of shape \(n, 3072\)"
    ):
        read_batch(path)
    path.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(ValueError, match="expected a CIFAR-10 python batch"):
        read_batch(path)


@pytest.mark.parametrize(
    "experiment, extra",
    [
        pytest.param("lra/image", [], marks=pytest.mark.slow),  # v3 dict lr {A, B, P}
        ("cifar/s4", ["data.augment=true"]),
    ],
)
def test_one_training_step_through_train(compose_train, tmp_path, experiment, extra):
    write_cifar(tmp_path / "data")
    cfg = compose_train(
        *TINY,
        "debug=fdr",
        f"experiment={experiment}",
        f"paths.data_dir={tmp_path / 'data'}",
        "data.batch_size=4",
        "data.batch_size_eval=4",
        *extra,
    )
    train_checked(cfg)
