"""Rows in the units of the training data, as the fitted model's working tensor."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.utils import check_array


def working_tensor(estimator, rows, name: str = "X") -> torch.Tensor:
    """``rows`` mapped to the fitted ``estimator``'s working units, shaped as its model's inputs,
    on its device and in its parameters' dtype; a clear error for the wrong number of features."""
    rows = check_array(rows, dtype=np.float64)
    if rows.shape[1] != estimator.n_features_in_:
        raise ValueError(f"{name} has {rows.shape[1]} features, the estimator was fitted on "
                         f"{estimator.n_features_in_}")
    model = estimator.module_
    dtype = next(model.parameters()).dtype
    working = estimator.range_map_.to_working(rows)
    return torch.as_tensor(working, device=estimator.device_, dtype=dtype).reshape(len(rows), *model.input_shape)
