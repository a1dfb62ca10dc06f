"""Small dataset files written in the real formats, and the fixtures the dataset tests share."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from skefh.datasets import (
    _paths,
)

Image = pytest.importorskip("PIL.Image")

IDX_TYPE_CODES = {
    np.dtype(np.uint8): 0x08,
    np.dtype(np.int8): 0x09,
    np.dtype(np.int16): 0x0B,
    np.dtype(np.int32): 0x0C,
    np.dtype(np.float32): 0x0D,
    np.dtype(np.float64): 0x0E,
}
MNIST_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
REAL_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


# --------------------------------------------------------------------------- helpers


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode ``array`` as an IDX file, written independently of the reader."""
    header = struct.pack(">BBBB", 0, 0, IDX_TYPE_CODES[array.dtype], array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx(path: Path, array: np.ndarray, compress: bool = False) -> Path:
    payload = idx_bytes(array)
    path.write_bytes(gzip.compress(payload) if compress else payload)
    return path


def write_mnist_dir(directory: Path, seed: int = 0, n_train: int = 12, n_test: int = 5):
    """Write the four MNIST IDX files (images gzipped, labels raw); return the arrays."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, n_train, dtype=np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for key, array in arrays.items():
        name = MNIST_NAMES[key]
        if key.endswith("images"):
            write_idx(directory / f"{name}.gz", array, compress=True)
        else:
            write_idx(directory / name, array)
    return arrays


def assert_matches_mnist_fixture(bunch, arrays):
    np.testing.assert_allclose(bunch.X_train * 255, arrays["train_images"].reshape(-1, 784))
    np.testing.assert_allclose(bunch.X_test * 255, arrays["test_images"].reshape(-1, 784))
    np.testing.assert_array_equal(bunch.y_train, arrays["train_labels"])
    np.testing.assert_array_equal(bunch.y_test, arrays["test_labels"])
    assert bunch.X_train.dtype == np.float32 and bunch.y_train.dtype == np.int64
    assert bunch.image_shape == (1, 28, 28)


def red_planar_images(n: int) -> np.ndarray:
    """CIFAR rows whose red plane is 255 and green/blue planes 0."""
    data = np.zeros((n, 3072), dtype=np.uint8)
    data[:, :1024] = 255
    return data


def write_cifar_python(directory: Path, protocol: int = 2, bytes_keys: bool = False,
                       label_names=None, per_batch: int = 2, n_test: int = 3) -> None:
    directory.mkdir(parents=True, exist_ok=True)

    def key(name):
        return name.encode() if bytes_keys else name

    def dump(path, obj):
        path.write_bytes(pickle.dumps(obj, protocol=protocol))

    for i in range(1, 6):
        labels = [(i + j) % 10 for j in range(per_batch)]
        dump(directory / f"data_batch_{i}",
             {key("data"): red_planar_images(per_batch), key("labels"): labels,
              key("batch_label"): f"training batch {i} of 5"})
    dump(directory / "test_batch",
         {key("data"): red_planar_images(n_test), key("labels"): list(range(n_test))})
    if label_names is not None:
        dump(directory / "batches.meta",
             {key("label_names"): label_names, key("num_vis"): 3072})


def python2_batch_pickle(data: np.ndarray, labels: list[int]) -> bytes:
    """Assemble a batch pickle the way Python 2's cPickle wrote the real CIFAR-10 files.

    Python 2 stored keys and the array buffer as byte strings (BINSTRING) and
    referred to ``numpy.core.multiarray``; Python 3's pickle cannot produce this.
    """

    def string(raw: bytes) -> bytes:
        return b"T" + struct.pack("<I", len(raw)) + raw

    def integer(value: int) -> bytes:
        return b"J" + struct.pack("<i", value)

    rows, cols = data.shape
    array = (
        b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n"
        + integer(0) + b"\x85" + string(b"b") + b"\x87R"
        + b"(" + integer(1) + integer(rows) + integer(cols) + b"\x86"
        + b"cnumpy\ndtype\n" + string(b"u1") + integer(0) + integer(1) + b"\x87R"
        + b"(" + integer(3) + string(b"|") + b"NNN" + integer(-1) + integer(-1) + integer(0)
        + b"tb" + b"\x89" + string(data.tobytes()) + b"tb"
    )
    label_list = b"](" + b"".join(integer(v) for v in labels) + b"e"
    return (
        b"\x80\x02}(" + string(b"data") + array + string(b"labels") + label_list + b"u."
    )


def write_cifar_binary(directory: Path, per_batch: int = 2, n_test: int = 3,
                       label_names=None) -> None:
    directory.mkdir(parents=True, exist_ok=True)

    def records(labels):
        rows = np.concatenate(
            [np.array(labels, dtype=np.uint8)[:, None], red_planar_images(len(labels))], axis=1
        )
        return rows.tobytes()

    for i in range(1, 6):
        (directory / f"data_batch_{i}.bin").write_bytes(
            records([(i + j) % 10 for j in range(per_batch)])
        )
    (directory / "test_batch.bin").write_bytes(records(list(range(n_test))))
    if label_names is not None:
        (directory / "batches.meta.txt").write_text("\n".join(label_names) + "\n\n")


def save_image(path: Path, size_wh=(4, 3), color=(255, 0, 0), mode="RGB") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size_wh, color).save(path)
    return path


@pytest.fixture(autouse=True)
def isolated_search(tmp_path_factory, monkeypatch):
    """Keep the user's home and SKEFH_DATA out of every test."""
    # A separate directory, so tests can use tmp_path itself as an empty root.
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SKEFH_DATA", raising=False)
    return home


@pytest.fixture
def no_system_data(tmp_path, monkeypatch):
    """Replace the system locations by directories that do not exist."""
    system = {name: (str(tmp_path / "system" / name),) for name in ("fashion-mnist", "mnist")}
    monkeypatch.setattr(_paths, "SYSTEM_DATA_DIRECTORIES", system)
    return system
