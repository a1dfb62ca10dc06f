"""Tests for skefh.plotting: grid arithmetic, value mapping, PNG output, history plots."""

import math
import sys

import numpy as np
import pytest
import torch

from skefh.plotting import (
    image_grid,
    plot_chains,
    plot_history,
    plot_nearest_neighbours,
    save_image_grid,
)

PIL_Image = pytest.importorskip("PIL.Image")
pytest.importorskip("matplotlib")


def _expected_size(n, n_cols, h, w, padding):
    n_rows = math.ceil(n / n_cols)
    return n_rows * (h + padding) + padding, n_cols * (w + padding) + padding


@pytest.mark.parametrize(
    "n,n_cols,padding,shape",
    [
        (1, None, 0, (1, 3, 5)),
        (5, None, 2, (1, 4, 4)),
        (7, 3, 1, (3, 2, 6)),
        (12, 4, 0, (3, 5, 5)),
        (3, 5, 3, (8, 8)),  # (H, W) shorthand for grayscale; more columns than images
    ],
)
def test_image_grid_shape_arithmetic(n, n_cols, padding, shape):
    c, h, w = (1, *shape) if len(shape) == 2 else shape
    images = np.random.default_rng(0).uniform(size=(n, c * h * w))
    grid = image_grid(images, shape, n_cols=n_cols, padding=padding)
    cols = math.ceil(math.sqrt(n)) if n_cols is None else n_cols
    assert grid.dtype == np.uint8
    assert grid.shape == (*_expected_size(n, cols, h, w, padding), c)


def test_image_grid_layout_and_padding():
    # Four 2x2 grayscale images with distinct constant values, 3 per row.
    images = np.repeat(np.array([0.0, 1.0, 2.0, 3.0])[:, None], 4, axis=1)
    grid = image_grid(images, (1, 2, 2), n_cols=3, padding=1, value_range=(0, 3))[..., 0]
    assert grid.shape == (7, 10)
    assert np.all(grid[1:3, 1:3] == 0)  # image 0, top-left
    assert np.all(grid[1:3, 4:6] == 85)  # image 1
    assert np.all(grid[1:3, 7:9] == 170)  # image 2
    assert np.all(grid[4:6, 1:3] == 255)  # image 3 starts the second row
    assert np.all(grid[0, :] == 255) and np.all(grid[:, 3] == 255)  # padding is white
    assert np.all(grid[4:6, 4:9] == 255)  # unused cells are padding
    black_pad = image_grid(images, (1, 2, 2), n_cols=3, padding=1, pad_value=0)
    assert black_pad[0, 0, 0] == 0


def test_image_grid_value_mapping():
    images = np.array([[-1.0, 1.0, 0.0, 5.0], [-3.0, 0.5, -0.5, 1.0]])
    grid = image_grid(images, (1, 2, 2), n_cols=2, padding=0, value_range=(-1, 1))[..., 0]
    # lo -> 0, hi -> 255, midpoint -> 128 (rounded), outside clipped.
    np.testing.assert_array_equal(grid[:, :2], [[0, 255], [128, 255]])
    np.testing.assert_array_equal(grid[:, 2:], [[0, 191], [64, 255]])
    auto = image_grid(images, (1, 2, 2), n_cols=2, padding=0)[..., 0]
    assert auto.min() == 0 and auto.max() == 255
    assert auto[1, 1] == 255 and auto[0, 2] == 0  # 5.0 is the max, -3.0 the min
    assert auto[0, 0] == 64  # -1 -> (2 / 8) * 255 = 63.75


def test_image_grid_channel_planar_order():
    h, w = 3, 4
    red = np.zeros((3, h, w))
    red[0] = 1.0  # only the first plane is on
    images = np.stack([red.ravel(), np.roll(red, 2, axis=0).ravel()])  # red, then blue
    grid = image_grid(images, (3, h, w), n_cols=2, padding=0, value_range=(0, 1))
    assert grid.shape == (h, 2 * w, 3)
    np.testing.assert_array_equal(grid[:, :w].reshape(-1, 3), np.tile([255, 0, 0], (h * w, 1)))
    np.testing.assert_array_equal(grid[:, w:].reshape(-1, 3), np.tile([0, 0, 255], (h * w, 1)))


def test_image_grid_nonfinite_and_tensor_input():
    images = torch.tensor([[0.0, float("nan"), float("inf"), 1.0]], requires_grad=True)
    grid = image_grid(images, (1, 2, 2), padding=0)[..., 0]
    np.testing.assert_array_equal(grid, [[0, 0], [255, 255]])


def test_image_grid_errors():
    with pytest.raises(ValueError, match="needs 12"):
        image_grid(np.zeros((2, 10)), (3, 2, 2))
    with pytest.raises(ValueError, match="C in"):
        image_grid(np.zeros((2, 8)), (2, 2, 2))
    with pytest.raises(ValueError, match="lo < hi"):
        image_grid(np.zeros((2, 4)), (2, 2), value_range=(1, 1))
    with pytest.raises(ValueError, match="empty"):
        image_grid(np.zeros((0, 4)), (2, 2))
    with pytest.raises(ValueError, match="n_cols"):
        image_grid(np.zeros((2, 4)), (2, 2), n_cols=0)
    with pytest.raises(ValueError, match="padding"):
        image_grid(np.zeros((2, 4)), (2, 2), padding=-1)


def test_save_image_grid_default_upscale_and_rgb(tmp_path):
    digits = np.random.default_rng(1).uniform(0, 16, size=(10, 64))
    out = save_image_grid(tmp_path / "sub" / "digits.png", digits, (8, 8), n_cols=5, padding=1)
    assert out == tmp_path / "sub" / "digits.png" and out.is_file()
    gh, gw = _expected_size(10, 5, 8, 8, 1)
    with PIL_Image.open(out) as im:
        assert im.format == "PNG" and im.mode == "L"
        assert im.size == (gw * 4, gh * 4)  # 8 px -> scale 4 -> 32 px >= 28 px
        pixels = np.asarray(im)
    ref = image_grid(digits, (8, 8), n_cols=5, padding=1)[..., 0]
    np.testing.assert_array_equal(pixels[::4, ::4], ref)

    rgb = np.random.default_rng(2).uniform(size=(3, 3 * 30 * 20))
    out = save_image_grid(tmp_path / "rgb.png", rgb, (3, 30, 20), padding=0)
    with PIL_Image.open(out) as im:
        assert im.mode == "RGB" and im.size == (2 * 20, 2 * 30)  # 30 px tall: no upscaling
    out = save_image_grid(tmp_path / "rgb3.png", rgb, (3, 30, 20), padding=0, scale=3)
    with PIL_Image.open(out) as im:
        assert im.size == (3 * 2 * 20, 3 * 2 * 30)
    with pytest.raises(ValueError, match="scale"):
        save_image_grid(tmp_path / "bad.png", rgb, (3, 30, 20), scale=0)


def test_plot_chains_layout(tmp_path):
    n_chains, n_steps = 3, 5
    chains = np.linspace(-1, 1, n_steps)[None, :, None] * np.ones((n_chains, n_steps, 16))
    out = plot_chains(chains, (4, 4), tmp_path / "chains.png", padding=1, scale=1)
    with PIL_Image.open(out) as im:
        assert im.size == (n_steps * 5 + 1, n_chains * 5 + 1)
        pixels = np.asarray(im)
    # Default value_range (-1, 1): first column (initialiser) black, last white.
    assert np.all(pixels[1:5, 1:5] == 0)
    assert np.all(pixels[1:5, -5:-1] == 255)
    with pytest.raises(ValueError, match="n_chains"):
        plot_chains(chains[0], (4, 4), tmp_path / "bad.png")


def test_plot_nearest_neighbours_layout(tmp_path):
    n, k = 2, 3
    queries = np.zeros((n, 9))
    neighbours = np.ones((n, k, 9))
    out = plot_nearest_neighbours(queries, neighbours, (3, 3), tmp_path / "nn.png", padding=0,
                                  scale=1)
    with PIL_Image.open(out) as im:
        assert im.size == ((k + 1) * 3, n * 3)
        pixels = np.asarray(im)
    assert np.all(pixels[:, :3] == 0) and np.all(pixels[:, 3:] == 255)  # query first
    with pytest.raises(ValueError, match="neighbours must have shape"):
        plot_nearest_neighbours(queries, np.ones((n + 1, k, 9)), (3, 3), tmp_path / "bad.png")


def test_missing_pillow_gives_pip_hint(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "PIL", None)
    monkeypatch.setitem(sys.modules, "PIL.Image", None)
    with pytest.raises(ImportError, match="pip install pillow"):
        save_image_grid(tmp_path / "x.png", np.zeros((1, 4)), (2, 2))
    assert image_grid(np.zeros((1, 4)), (2, 2)).shape == (6, 6, 1)  # numpy-only path still works


def _history():
    return [
        {"update": 10 * i, "energy_data": -float(i), "energy_samples": 0.5 * i,
         "energy_gap": float("nan") if i == 2 else 1.0 / (i + 1), "grad_norm": 2.0,
         "seconds": 0.01, "phase": "train"}
        for i in range(6)
    ]


def test_plot_history_default_keys_and_file(tmp_path):
    from matplotlib.figure import Figure

    out = tmp_path / "plots" / "history.png"
    fig = plot_history(_history(), path=out)
    assert isinstance(fig, Figure)
    labels = [ax.get_ylabel() for ax in fig.axes]
    assert labels == ["energy_data", "energy_samples", "energy_gap", "grad_norm", "seconds"]
    assert fig.axes[-1].get_xlabel() == "update"
    with PIL_Image.open(out) as im:
        assert im.format == "PNG" and im.size[0] > 100
    # NaN skipped; x values come from the "update" entries.
    x, y = fig.axes[2].lines[0].get_data()
    np.testing.assert_array_equal(x, [0, 10, 30, 40, 50])
    assert np.all(np.isfinite(y))


def test_plot_history_keys_index_and_errors():
    records = [{"loss": v} for v in [3.0, float("inf"), 1.0, np.float32(0.5)]]
    fig = plot_history(records, keys="loss")
    assert len(fig.axes) == 1 and fig.axes[0].get_xlabel() == "record"
    x, y = fig.axes[0].lines[0].get_data()
    np.testing.assert_array_equal(x, [0, 2, 3])
    np.testing.assert_allclose(y, [3.0, 1.0, 0.5])
    all_nan = plot_history([{"a": float("nan")}, {"a": float("nan")}])
    assert len(all_nan.axes) == 1
    with pytest.raises(ValueError, match="appear in no history record"):
        plot_history(records, keys=["loss", "typo"])
    with pytest.raises(ValueError, match="empty"):
        plot_history([])
    with pytest.raises(ValueError, match="no numeric entries"):
        plot_history([{"update": 1, "phase": "x"}])


def test_plot_history_leaves_pyplot_alone():
    import matplotlib

    backend = matplotlib.get_backend()
    plot_history(_history())
    assert matplotlib.get_backend() == backend
    if "matplotlib.pyplot" in sys.modules:
        assert sys.modules["matplotlib.pyplot"].get_fignums() == []
