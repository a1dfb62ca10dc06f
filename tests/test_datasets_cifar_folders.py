"""Tests for skefh.datasets: CIFAR-10 layouts, image folders, digits and the package surface.

Fixtures are small files written in the real formats (``dataset_files``).
"""

from __future__ import annotations

import ast
import os
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
from dataset_files import (  # noqa: F401  (the fixtures are found by name)
    Image,
    isolated_search,
    no_system_data,
    python2_batch_pickle,
    save_image,
    write_cifar_binary,
    write_cifar_python,
)

from skefh import datasets
from skefh.datasets import (
    load_cifar10,
    load_digits,
    load_image_folder,
)

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


def test_public_api():
    assert sorted(datasets.__all__) == [
        "DATASETS", "load_cifar10", "load_dataset", "load_digits", "load_fashion_mnist",
        "load_idx", "load_image_folder", "load_mnist",
    ]  # fmt: skip


def test_no_module_of_the_package_imports_torch():
    # The dataset loaders stay usable without torch (skefh/__init__ imports it, so the check is
    # on the source rather than on sys.modules).
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
