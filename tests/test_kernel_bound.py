"""Lower bounds on log Z that need no chain: kernel densities on training rows, in and out of a box."""

import math

import pytest
import torch
from conftest import far_mode_nnefh, tiny_nnefh
from test_ais import _quadrature_log_z

from skefh.samplers import kernel_log_weights, kernel_lower_bound


@pytest.mark.parametrize("variance", [0.05, 0.3, 1.0])
def test_kernel_lower_bound_is_below_the_exact_log_partition(variance):
    """Jensen: for any kernel density q, E_q[log f - log q] <= log Z; closest when q is near f."""
    model, w, exact = far_mode_nnefh()
    gen = torch.Generator().manual_seed(0)
    centres = w / 2 + 0.7 * torch.randn(200, w.shape[0], generator=gen, dtype=w.dtype)  # "data" at the mode
    bound, std = kernel_lower_bound(lambda x: -model.free_energy(x), centres, variance, 4000, generator=gen)
    assert bound < exact + 3 * std
    assert 0 < std < 1
    if variance == 0.3:
        assert bound > exact - 6.0  # informative: well above the quadratic base's 9.16
    tiny = tiny_nnefh(2, 4, 5, seed=3)
    tiny_exact = _quadrature_log_z(tiny.free_energy, -15, 15, n=1501, dim=2)
    centres = torch.randn(30, 2, generator=gen, dtype=torch.float64)
    bound, std = kernel_lower_bound(lambda x: -tiny.free_energy(x), centres, variance, 4000, generator=gen)
    assert bound < tiny_exact + 3 * std


@pytest.mark.parametrize("variance", [0.01, 0.1, 1.0])
def test_kernel_lower_bound_in_a_box_bounds_the_restricted_log_partition(variance):
    """f = exp(-||x||^2 / 2) restricted to [0, 1]^3: log Z = 3 log(sqrt(2 pi) (Phi(1) - 1/2)).
    With kernels truncated to the box the bound stays below it (and equals it where the one
    kernel is f itself); kernels left unrestricted bound the larger, unrestricted Z instead."""
    from scipy.stats import norm

    dim = 3
    exact = dim * math.log(math.sqrt(2 * math.pi) * (norm.cdf(1.0) - 0.5))
    log_f = lambda x: -0.5 * x.double().square().sum(1)  # noqa: E731
    evaluated = []

    def recorded(x):
        evaluated.append(x)
        return log_f(x)

    gen = torch.Generator().manual_seed(0)
    centres = torch.cat([torch.rand(20, dim, generator=gen, dtype=torch.float64),
                         torch.tensor([[1.5, -0.5, 0.5]], dtype=torch.float64)])  # one row outside the box
    bound, std = kernel_lower_bound(recorded, centres, variance, 4000, generator=gen, bounds=(0.0, 1.0))
    assert bound < exact + 3 * std
    assert exact - bound < {0.01: 1.5, 0.1: 0.3, 1.0: 0.1}[variance]  # informative
    inside = torch.cat(evaluated)
    assert inside.min() >= 0.0 and inside.max() <= 1.0
    lower, upper = torch.zeros(dim), torch.ones(dim)  # tensor bounds give the same draws
    again = kernel_lower_bound(log_f, centres, variance, 4000, generator=torch.Generator().manual_seed(0),
                               bounds=(lower, upper))
    first = kernel_lower_bound(log_f, centres, variance, 4000, generator=torch.Generator().manual_seed(0),
                               bounds=(0.0, 1.0))
    assert again == pytest.approx(first)
    unrestricted, _ = kernel_lower_bound(log_f, centres, variance, 4000, generator=gen)
    if variance == 1.0:
        assert unrestricted > exact + 1.0  # why the box must be passed
    one = torch.zeros(1, dim, dtype=torch.float64)  # the truncated kernel at 0 with variance 1 is f itself
    if variance == 1.0:
        value, spread = kernel_lower_bound(log_f, one, variance, 500, generator=gen, bounds=(0.0, 1.0))
        assert value == pytest.approx(exact, abs=1e-6) and spread < 1e-6


def test_kernel_log_weights_give_the_bound_and_an_importance_estimate():
    """The mean of the log-weights is kernel_lower_bound's value (same draws); the log of their
    mean exponential is an importance estimate of log Z: exact where q is f, and between the
    Jensen bound and log Z (up to noise) where it is not."""
    from scipy.stats import norm

    dim = 3
    exact = dim * math.log(math.sqrt(2 * math.pi) * (norm.cdf(1.0) - 0.5))
    log_f = lambda x: -0.5 * x.double().square().sum(1)  # noqa: E731
    centres = torch.rand(10, dim, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    weights = kernel_log_weights(log_f, centres, 0.05, 4000, generator=torch.Generator().manual_seed(0),
                                 bounds=(0.0, 1.0))
    bound, std = kernel_lower_bound(log_f, centres, 0.05, 4000, generator=torch.Generator().manual_seed(0),
                                    bounds=(0.0, 1.0))
    assert weights.shape == (4000,) and float(weights.mean()) == pytest.approx(bound)
    importance = float(torch.logsumexp(weights, 0) - math.log(4000))
    assert bound + 0.1 < importance < exact + 0.1
    one = kernel_log_weights(log_f, torch.zeros(1, dim, dtype=torch.float64), 1.0, 200,
                             generator=torch.Generator().manual_seed(0), bounds=(0.0, 1.0))
    assert float(torch.logsumexp(one, 0) - math.log(200)) == pytest.approx(exact, abs=1e-9)


def test_kernel_lower_bound_rejects_bad_arguments():
    centres = torch.zeros(3, 2)
    with pytest.raises(ValueError, match="variance must be positive"):
        kernel_lower_bound(lambda x: x.sum(1), centres, 0.0)
    with pytest.raises(ValueError, match="at least 2 samples"):
        kernel_lower_bound(lambda x: x.sum(1), centres[:0], 1.0)
