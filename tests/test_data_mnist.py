"""sMNIST / pMNIST / Fashion-MNIST from IDX files (gz and raw) on tiny fixtures."""

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY, train_checked

from s4lab.data.base import MissingDataError
from s4lab.data.mnist import MNIST, FashionMNIST, bitreversal_permutation, read_idx

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


def write_idx(path: Path, array: np.ndarray, gz: bool) -> None:
    """IDX: big-endian magic 0x0803 (images n x 28 x 28) or 0x0801 (labels n), then uint8 data."""
    magic = 0x0803 if array.ndim == 3 else 0x0801
    raw = struct.pack(f">{1 + array.ndim}I", magic, *array.shape) + array.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(raw))
    else:
        path.write_bytes(raw)


def write_mnist(folder: Path, n_train: int = 20, n_test: int = 5, seed: int = 0) -> dict:
    """train-* gzipped, t10k-* raw: both published variants in one tree."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for prefix, n, gz in (("train", n_train, True), ("t10k", n_test, False)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        write_idx(folder / f"{prefix}-images-idx3-ubyte", images, gz)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels, gz)
        arrays[prefix] = (images, labels)
    return arrays


def setup_dm(folder: Path, cls=MNIST, **kwargs) -> MNIST:
    dm = cls(data_dir=str(folder), batch_size=4, **kwargs)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def test_bitreversal_permutation():
    assert bitreversal_permutation(8).tolist() == [0, 4, 2, 6, 1, 5, 3, 7]
    perm = bitreversal_permutation(784)  # bit reversal over 1024, indices >= 784 dropped
    assert sorted(perm.tolist()) == list(range(784))
    assert perm[:6].tolist() == [0, 512, 256, 768, 128, 640]


def test_smnist_reads_gz_and_raw_row_major_unnormalized(tmp_path):
    arrays = write_mnist(tmp_path / "mnist")
    dm = setup_dm(tmp_path / "mnist")
    assert (dm.d_input, dm.d_output, dm.l_max, dm.vocab_size) == (1, 10, 784, None)
    assert (len(dm.data_train), len(dm.data_val), len(dm.data_test)) == (18, 2, 5)  # int(20 * 0.9)
    images, labels = arrays["t10k"]  # raw files
    x, y = dm.data_test[3]
    assert x.shape == (784, 1) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert int(y) == labels[3]
    expected = torch.tensor(images[3].reshape(784) / 255, dtype=torch.float32)  # ToTensor only
    torch.testing.assert_close(x[:, 0], expected)
    train_images = {bytes(im.numpy()) for im in dm.data_train.images}
    assert train_images | {bytes(im.numpy()) for im in dm.data_val.images} == {
        bytes(im) for im in arrays["train"][0]
    }  # gz train files: the split covers them, disjointly
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (4, 784, 1) and y.shape == (4,)


def test_pmnist_applies_bit_reversal_to_the_time_axis(tmp_path):
    write_mnist(tmp_path / "mnist")
    plain, permuted = setup_dm(tmp_path / "mnist"), setup_dm(tmp_path / "mnist", permute=True)
    perm = bitreversal_permutation(784)
    for i in range(len(plain.data_test)):
        torch.testing.assert_close(permuted.data_test[i][0], plain.data_test[i][0][perm])
    torch.testing.assert_close(permuted.data_val.images, plain.data_val.images)  # same split


def test_split_is_the_official_seed_42_permutation(tmp_path):
    """random_split(train, [int(0.9 n), rest], seed 42) = randperm(n) cut in order (54k/6k)."""
    images = torch.from_numpy(write_mnist(tmp_path / "mnist")["train"][0])
    dm = setup_dm(tmp_path / "mnist")
    perm = torch.randperm(20, generator=torch.Generator().manual_seed(42))
    assert torch.equal(dm.data_train.images, images[perm[:18]])
    assert torch.equal(dm.data_val.images, images[perm[18:]])


def test_torchvision_layout_is_found(tmp_path):
    write_mnist(tmp_path / "mnist" / "MNIST" / "raw")
    assert len(setup_dm(tmp_path / "mnist").data_test) == 5


def test_fashion_mnist_uses_the_same_format(tmp_path):
    write_mnist(tmp_path / "fashion-mnist", seed=1)
    dm = setup_dm(tmp_path / "fashion-mnist", FashionMNIST)
    assert len(dm.data_train) == 18 and dm.data_test[0][0].shape == (784, 1)


@pytest.mark.skipif(
    not DEBIAN_FASHION.is_dir(), reason="Debian dataset-fashion-mnist not installed"
)
def test_real_fashion_mnist_from_debian():
    dm = setup_dm(DEBIAN_FASHION, FashionMNIST)
    assert (len(dm.data_train), len(dm.data_val), len(dm.data_test)) == (54000, 6000, 10000)
    assert torch.bincount(dm.data_test.labels.long()).tolist() == [1000] * 10


def test_missing_dataset_names_path_and_prepare_command(tmp_path):
    with pytest.raises(MissingDataError) as e:
        MNIST(data_dir=str(tmp_path / "mnist")).prepare_data()
    assert "train-images-idx3-ubyte.gz" in str(e.value)
    assert "python scripts/prepare_data.py mnist" in str(e.value)
    with pytest.raises(MissingDataError, match="prepare_data.py fashion-mnist"):
        FashionMNIST(data_dir=str(tmp_path / "fashion-mnist")).prepare_data()


def test_truncated_idx_names_the_file(tmp_path):
    write_mnist(tmp_path / "mnist")
    path = tmp_path / "mnist" / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ValueError, match="t10k-images-idx3-ubyte: truncated"):
        setup_dm(tmp_path / "mnist")


def test_truncated_gzip_names_the_file(tmp_path):
    write_mnist(tmp_path / "mnist")
    path = tmp_path / "mnist" / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.gz: corrupt or truncated"):
        setup_dm(tmp_path / "mnist")


def test_wrong_magic_says_what_was_expected(tmp_path):
    labels = tmp_path / "labels"
    write_idx(labels, np.zeros(3, np.uint8), gz=False)
    with pytest.raises(ValueError, match=r"magic 0x00000801, expected 0x00000803 \(images"):
        read_idx(labels, 0x0803)
    images = tmp_path / "images"
    write_idx(images, np.zeros((2, 32, 32), np.uint8), gz=False)
    with pytest.raises(ValueError, match="images must be 28 x 28"):
        read_idx(images, 0x0803)


@pytest.mark.parametrize(
    "experiment", ["mnist/smnist", pytest.param("mnist/pmnist", marks=pytest.mark.slow)]
)
def test_one_training_step_through_train(compose_train, tmp_path, experiment):
    write_mnist(tmp_path / "data" / "mnist")
    cfg = compose_train(
        *TINY,
        "debug=fdr",
        f"experiment={experiment}",
        f"paths.data_dir={tmp_path / 'data'}",
        "data.batch_size=4",
        "data.batch_size_eval=4",
    )
    train_checked(cfg)
