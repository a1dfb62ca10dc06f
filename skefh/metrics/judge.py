"""A small convolutional classifier that judges generated images.

Trained on the real data's labels, it gives the features for a Fréchet distance and the class
probabilities for confidence and coverage (:mod:`skefh.metrics.sample_quality`). It is a
yardstick, not a model of the library: small enough to train on a CPU, accurate enough on the
real test images to judge samples (its accuracy is on the generation page of the docs).
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .._arrays import to_numpy
from .sample_quality import SampleQuality, sample_quality

__all__ = ["ImageJudge", "JudgeNet"]


class JudgeNet(nn.Module):
    """Two 3x3 convolution + ReLU + 2x2 max-pool stages, a dense feature layer, a classifier.

    Parameters
    ----------
    image_shape : tuple of int
        ``(C, H, W)`` with ``H, W >= 4``.
    n_classes : int
    n_features : int, default=128
        Width of the penultimate layer (the features of the Fréchet distance).
    width : int, default=32
        Channels of the first convolution (then twice as many).
    """

    def __init__(self, image_shape: Sequence[int], n_classes: int, n_features: int = 128, width: int = 32):
        super().__init__()
        channels, height, width_px = (int(s) for s in image_shape)
        if height < 4 or width_px < 4:
            raise ValueError(f"the judge needs images of at least 4x4, got {height}x{width_px}")
        self.image_shape = (channels, height, width_px)
        self.conv1 = nn.Conv2d(channels, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, 2 * width, 3, padding=1)
        self.fc = nn.Linear(2 * width * (height // 4) * (width_px // 4), n_features)
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(n_features, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        h = F.max_pool2d(F.relu(self.conv1(x)), 2)
        h = F.max_pool2d(F.relu(self.conv2(h)), 2)
        return F.relu(self.fc(h.flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(x)))


class ImageJudge:
    """A classifier trained on real images that scores sets of generated ones.

    Inputs are rows of pixels in the units of the data it was trained on. Every input is clipped
    to the training data's range first (samples are judged as the images they display as), then
    standardised with the training data's mean and standard deviation.

    Parameters
    ----------
    image_shape : tuple of int
        ``(C, H, W)`` of a row.
    n_classes : int
    epochs : int, default=4
    batch_size : int, default=128
    learning_rate : float, default=1e-3
    random_state : int, default=0

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.uniform(0, 0.2, (40, 64)), rng.uniform(0.8, 1, (40, 64))])
    >>> y = np.repeat([0, 1], 40)
    >>> judge = ImageJudge((1, 8, 8), 2, epochs=3).fit(X, y)
    >>> float((judge.predict(X) == y).mean())
    1.0
    """

    def __init__(
        self,
        image_shape: Sequence[int],
        n_classes: int,
        *,
        epochs: int = 4,
        batch_size: int = 128,
        learning_rate: float = 1e-3,
        random_state: int = 0,
    ):
        self.image_shape = tuple(int(s) for s in image_shape)
        self.n_classes = int(n_classes)
        self.epochs = int(epochs)
        self.batch_size = int(batch_size)
        self.learning_rate = float(learning_rate)
        self.random_state = int(random_state)
        self.net: Optional[JudgeNet] = None
        self.range_ = self.mean_ = self.std_ = None
        self.train_seconds_ = None

    # -- data ------------------------------------------------------------------------------------
    def _rows(self, X, name="X") -> np.ndarray:
        X = np.asarray(to_numpy(X), dtype=np.float32)
        n_pixels = math.prod(self.image_shape)
        if X.ndim != 2 or X.shape[1] != n_pixels:
            raise ValueError(f"{name} must have shape (n, {n_pixels}) for images {self.image_shape}, got {X.shape}")
        if not np.all(np.isfinite(X)):
            raise ValueError(f"{name} contains NaN or infinite values")
        return X

    def _tensor(self, X: np.ndarray) -> torch.Tensor:
        X = np.clip(X, *self.range_)
        return torch.from_numpy((X - self.mean_) / self.std_).reshape(-1, *self.image_shape)

    def _check_fitted(self):
        if self.net is None:
            raise RuntimeError("the judge is not trained: call fit() or load() first")

    # -- training --------------------------------------------------------------------------------
    def fit(self, X, y) -> "ImageJudge":
        """Train on labelled real images (Adam, cross-entropy, ``epochs`` passes)."""
        X = self._rows(X)
        y = np.asarray(y, dtype=np.int64)
        if y.shape != (X.shape[0],) or y.min() < 0 or y.max() >= self.n_classes:
            raise ValueError(f"y must hold one label in [0, {self.n_classes}) per row of X")
        self.range_ = (float(X.min()), float(X.max()))
        self.mean_, self.std_ = float(X.mean()), float(X.std()) or 1.0
        generator = torch.Generator().manual_seed(self.random_state)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.random_state)
            self.net = JudgeNet(self.image_shape, self.n_classes)
        optimizer = torch.optim.Adam(self.net.parameters(), lr=self.learning_rate)
        data, labels = self._tensor(X), torch.from_numpy(y)
        start = time.perf_counter()
        self.net.train()
        for _ in range(self.epochs):
            order = torch.randperm(len(data), generator=generator)
            for i in range(0, len(data), self.batch_size):
                idx = order[i : i + self.batch_size]
                loss = F.cross_entropy(self.net(data[idx]), labels[idx])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        self.net.eval()
        self.train_seconds_ = time.perf_counter() - start
        return self

    # -- inference -------------------------------------------------------------------------------
    def _apply(self, X, output: str) -> np.ndarray:
        self._check_fitted()
        X = self._rows(X)
        fn = self.net.features if output == "features" else (lambda x: torch.softmax(self.net(x), dim=1))
        with torch.inference_mode():
            parts = [fn(self._tensor(X[i : i + 1024])).numpy() for i in range(0, len(X), 1024)]
        return np.concatenate(parts).astype(np.float64)

    def features(self, X) -> np.ndarray:
        """Penultimate-layer features, shape ``(n, 128)``."""
        return self._apply(X, "features")

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, shape ``(n, n_classes)``."""
        return self._apply(X, "probabilities")

    def predict(self, X) -> np.ndarray:
        return self.predict_proba(X).argmax(1)

    def accuracy(self, X, y) -> float:
        return float((self.predict(X) == np.asarray(y)).mean())

    def evaluate(self, samples, reference) -> SampleQuality:
        """:func:`~skefh.metrics.sample_quality` of ``samples`` against real ``reference`` rows."""
        return sample_quality(self.features(samples), self.predict_proba(samples), self.features(reference))

    # -- persistence -----------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        self._check_fitted()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(
            {"image_shape": self.image_shape, "n_classes": self.n_classes, "range": self.range_,
             "mean": self.mean_, "std": self.std_, "state": self.net.state_dict()},
            path,
        )
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ImageJudge":
        saved = torch.load(path, map_location="cpu", weights_only=True)
        judge = cls(saved["image_shape"], saved["n_classes"])
        judge.net = JudgeNet(judge.image_shape, judge.n_classes)
        judge.net.load_state_dict(saved["state"])
        judge.net.eval()
        judge.range_ = tuple(saved["range"])
        judge.mean_, judge.std_ = saved["mean"], saved["std"]
        return judge
