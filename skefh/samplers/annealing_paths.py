"""Annealing paths for :func:`skefh.samplers.annealed_importance_sampling`.

The paths provided here (each borrows a model and owns no parameters):

- :class:`GaussianMixtureBasePath` (NN-EFH): base a mixture of diagonal Gaussians (the
  estimator's: one at mu with the quadratic term's spread, one fitted to the training data),
  f_beta = f_0^(1 - beta) exp(-F / tau)^beta; MALA moves.
- :class:`BoxPath` (EBM): base uniform on a box; f_beta(x) = exp(-beta * E(x) / tau) on the box;
  MALA moves whose proposals that leave the box are reflected back in. With ``tail_variance`` the box is
  soft: the base is uniform inside with Gaussian tails outside, and the density is positive
  everywhere.
- :class:`GRBMPath` (GRBM): base a diagonal Gaussian x Bern(1/2) (the model's quadratic term, or
  one fitted to the training data); exact block Gibbs moves.
"""

from __future__ import annotations

import math
from typing import Optional

import torch

from ..nn.base import EnergyModel
from .langevin import fold_into_box, log_folded_proposal

__all__ = ["GaussianMixtureBasePath", "BoxPath", "GRBMPath"]


class _GeometricPath:
    """A path ``log f_beta(x) = log f_0(x) + beta r(x)`` with Metropolis-adjusted Langevin moves.

    Subclasses give the base density (``_base_and_grad``: closed form, cheap) and ``log_ratio``
    r(x) = log f_1(x) - log f_0(x) (a network evaluation). r and its input gradient are cached
    at the chains' current states, so each move costs one network forward and backward pass (at
    the proposal), and the weight increment ``(beta' - beta) r(x)`` reuses the same value.
    The MALA step size is adapted towards ``target_acceptance`` as the run goes.
    """

    log_z0: float

    def __init__(self, model, step_size: float, n_moves: int, target_acceptance: float = 0.6):
        self.model = model
        self.step_size = float(step_size)
        self.n_moves = n_moves
        self.target = target_acceptance
        self._accepted = 0.0
        self._moves = 0
        self._cache = None  # (x, r(x), grad r(x)) for the tensor the chains are at

    def _base_and_grad(self, x):
        raise NotImplementedError

    def log_ratio(self, x):
        raise NotImplementedError

    def inside(self, x):
        """Whether each row lies in the support (None: the support is all of R^D)."""
        box = self.box()
        return None if box is None else ((x >= box[0]) & (x <= box[1])).flatten(1).all(1)

    def box(self):
        """(low, high) of a box the target is restricted to, or None; proposals that leave it
        are reflected back in."""
        return None

    def _ratio_and_grad(self, x):
        if self._cache is not None and self._cache[0] is x:
            return self._cache[1], self._cache[2]
        with torch.enable_grad():
            xg = x.detach().requires_grad_(True)
            ratio = self.log_ratio(xg)
            (grad,) = torch.autograd.grad(ratio.sum(), xg)
        ratio = ratio.detach()
        self._cache = (x, ratio, grad)
        return ratio, grad

    def log_weight_increment(self, x, beta_prev, beta_next):
        ratio, _ = self._ratio_and_grad(x)
        return (beta_next - beta_prev) * ratio.double()

    def transition(self, x, beta, generator):
        for _ in range(self.n_moves):
            x = self._move(x, beta, generator)
        return x

    def _move(self, x, beta, generator):
        ratio, ratio_grad = self._ratio_and_grad(x)
        base, base_grad = self._base_and_grad(x)
        logp, grad = base + beta * ratio, base_grad + beta * ratio_grad
        eps = self.step_size
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        proposal = x + eps * grad + math.sqrt(2 * eps) * noise
        box = self.box()
        if box is not None:  # reflected at the faces, as metropolis_langevin's proposals are
            proposal, inside = fold_into_box(proposal, *box)
        ratio_new, ratio_grad_new = self._ratio_and_grad(proposal)
        base_new, base_grad_new = self._base_and_grad(proposal)
        logp_new, grad_new = base_new + beta * ratio_new, base_grad_new + beta * ratio_grad_new
        if box is None:
            # log q(x | x') - log q(x' | x) for the Langevin proposal.
            fwd = (proposal - x - eps * grad).flatten(1).square().sum(1)
            bwd = (x - proposal - eps * grad_new).flatten(1).square().sum(1)
            log_accept = logp_new - logp + (fwd - bwd) / (4 * eps)
        else:
            log_accept = (logp_new - logp + log_folded_proposal(x, proposal + eps * grad_new, eps, *box)
                          - log_folded_proposal(proposal, x + eps * grad, eps, *box))
            log_accept = torch.where(inside, log_accept, torch.full_like(log_accept, -math.inf))
        u = torch.rand(log_accept.shape, generator=generator, device=x.device, dtype=log_accept.dtype)
        accept = torch.log(u) < log_accept
        rows = accept.view(-1, *([1] * (x.dim() - 1)))
        x_next = torch.where(rows, proposal, x)
        self._cache = (
            x_next,
            torch.where(accept, ratio_new, ratio),
            torch.where(rows, ratio_grad_new, ratio_grad),
        )
        rate = float(accept.float().mean())
        self._accepted += rate
        self._moves += 1
        # Robbins-Monro-style nudging of the step towards the target acceptance rate.
        self.step_size *= math.exp(0.5 * (rate - self.target))
        return x_next

    @property
    def acceptance(self) -> float:
        """Mean Metropolis acceptance rate of the moves so far."""
        return self._accepted / max(self._moves, 1)


class GaussianMixtureBasePath(_GeometricPath):
    """NN-EFH: from a mixture of diagonal Gaussians to exp(-F(x) / tau).

    A base of the quadratic term alone, N(mu, tau I / 2) (one component), sits where an
    untrained network puts its mass; a trained one can put nearly all of it near the data, far
    from that base's typical set, where annealed chains started from the base never arrive. Their weights then agree
    with one another (a high effective sample size, a small standard error) on a log Z that misses
    that mass, far below what the training images' own log-densities imply (see the likelihood
    page of the docs).
    A mixture with a component fitted to the data starts chains in both places. The base is
    normalised (log Z_0 = 0) and sampled exactly, so the estimate stays an AIS estimate; the
    components only decide where the chains start.

    With ``bounds`` the target is exp(-F(x) / tau) restricted to a box: each component is
    truncated to the box (per coordinate, renormalised, sampled by its inverse distribution
    function) and proposals that leave the box are reflected back in at the face they crossed.

    Parameters
    ----------
    model : skefh.nn.NNEFHEnergy
    means, variances : torch.Tensor of shape ``(n_components, *input_shape)``
        The components' means and per-coordinate variances (> 0).
    weights : torch.Tensor of shape ``(n_components,)``, optional
        Mixing weights (positive; normalised here); None for equal weights.
    step_size : float, optional
        Initial MALA step size (adapted towards 60 % acceptance); defaults to ``0.01 * tau``.
    n_moves : int, default=1
        MALA moves per intermediate distribution.
    bounds : (low, high) of torch.Tensor of the input shape, optional
        The box of a restricted target; None for the density on all of R^D.
    """

    log_z0 = 0.0

    def __init__(self, model: EnergyModel, means: torch.Tensor, variances: torch.Tensor,
                 step_size: Optional[float] = None, n_moves: int = 1, bounds: Optional[tuple] = None,
                 weights: Optional[torch.Tensor] = None):
        shape = tuple(model.input_shape)
        if means.dim() != len(shape) + 1 or tuple(means.shape[1:]) != shape or means.shape != variances.shape:
            raise ValueError(
                f"means and variances must both have shape (n_components, *{shape}), got "
                f"{tuple(means.shape)} and {tuple(variances.shape)}"
            )
        if not bool(torch.all(variances > 0)) or not bool(torch.all(torch.isfinite(means))):
            raise ValueError("the base components need finite means and positive variances")
        self.temperature = float(model.temperature)
        super().__init__(model, step_size if step_size is not None else 0.01 * self.temperature, n_moves)
        self.means, self.variances = means, variances
        self._expansion = None  # (1 / v, m / v, sum m^2 / v), made on first use by _expanded
        n = means.shape[0]
        self.weights = None
        log_weights = torch.full((n,), -math.log(n), dtype=means.dtype, device=means.device)
        if weights is not None:
            weights = torch.as_tensor(weights, dtype=torch.float64, device=means.device)
            if weights.shape != (n,) or not bool(torch.all((weights > 0) & torch.isfinite(weights))):
                raise ValueError(f"weights must be {n} positive finite numbers, one per component")
            self.weights = weights / weights.sum()
            log_weights = torch.log(self.weights).to(means.dtype)
        # log of (mixing weight x Gaussian normaliser), per component
        self._log_norm = log_weights - 0.5 * (torch.log(2 * math.pi * variances)).flatten(1).sum(1)
        self.bounds = None
        if bounds is not None:
            low, high = (torch.as_tensor(b, dtype=means.dtype, device=means.device).expand(shape) for b in bounds)
            if not bool(torch.all(high > low)):
                raise ValueError("the box must have positive width in every dimension")
            self.bounds = (low, high)
            # Each coordinate's truncated normal: the mass of [low, high] under N(m, v), computed
            # on the side of the mean away from the box so that it does not round to 0.
            std = variances.double().sqrt()
            a, b = (low.double() - means.double()) / std, (high.double() - means.double()) / std
            self._flip = a > 0  # the box lies above the mean: work with -x
            lo, hi = torch.where(self._flip, -b, a), torch.where(self._flip, -a, b)
            self._cdf_low, self._cdf_high = torch.special.ndtr(lo), torch.special.ndtr(hi)
            mass = (self._cdf_high - self._cdf_low).clamp_min(1e-300)
            self._log_norm = self._log_norm - torch.log(mass).flatten(1).sum(1).to(means.dtype)

    def box(self):
        return self.bounds

    def sample_base(self, n, generator):
        k = self.means.shape[0]
        device = self.means.device
        if self.weights is None:
            which = torch.randint(k, (n,), generator=generator, device=device)
        else:
            which = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        shape = (n, *self.means.shape[1:])
        std = self.variances[which].sqrt()
        if self.bounds is None:
            noise = torch.randn(shape, generator=generator, device=device, dtype=self.means.dtype)
            return self.means[which] + noise * std
        u = torch.rand(shape, generator=generator, device=device, dtype=torch.float64)
        low_cdf, high_cdf = self._cdf_low[which], self._cdf_high[which]
        standard = torch.special.ndtri(low_cdf + u * (high_cdf - low_cdf))
        standard = torch.where(self._flip[which], -standard, standard).to(self.means.dtype)
        x = self.means[which] + standard * std
        return torch.minimum(torch.maximum(x, self.bounds[0]), self.bounds[1])  # rounding at the edges

    #: Above this many components the squared distances are expanded into matrix products
    #: (float64, so that the expansion's cancellation costs nothing): a kernel base of hundreds
    #: of training rows in hundreds of dimensions then costs two products per evaluation, where
    #: the (B, K, D) differences below cost ten times the time and their memory. Small mixtures
    #: (a base of the two Gaussians alone, as for a model loaded from a checkpoint) keep the
    #: direct form, with which their AIS runs were measured.
    expand_above = 16

    def _expanded(self):
        if self._expansion is None:
            precision = (1.0 / self.variances.double()).flatten(1)  # (K, D)
            scaled_means = self.means.double().flatten(1) * precision
            offsets = (scaled_means * self.means.double().flatten(1)).sum(1)  # sum_d m^2 / v
            self._expansion = precision, scaled_means, offsets
        return self._expansion

    def _component_log_densities(self, x):
        """log of (weight x density) of every component at every row: (B, K)."""
        if self.means.shape[0] <= self.expand_above:
            diff = x.unsqueeze(1) - self.means  # (B, K, *shape)
            return self._log_norm - (diff.square() / (2 * self.variances)).flatten(2).sum(2)
        precision, scaled_means, offsets = self._expanded()
        flat = x.double().flatten(1)
        squared = flat.square() @ precision.T - 2.0 * flat @ scaled_means.T + offsets
        return (self._log_norm.double() - 0.5 * squared).to(x.dtype)

    def _log_base(self, x):
        return torch.logsumexp(self._component_log_densities(x), dim=1)

    def log_ratio(self, x):
        """log f_1(x) - log f_0(x) = -F(x) / tau - log q(x)."""
        return self.model.log_density(x) - self._log_base(x)

    def _base_and_grad(self, x):
        log_components = self._component_log_densities(x)
        log_q = torch.logsumexp(log_components, dim=1)
        responsibility = torch.softmax(log_components, dim=1)  # (B, K)
        if self.means.shape[0] <= self.expand_above:
            diff = x.unsqueeze(1) - self.means
            weights = responsibility.view(*responsibility.shape, *([1] * (x.dim() - 1)))
            return log_q, -(weights * diff / self.variances).sum(1)
        # grad log q = sum_k r_k (m_k - x) / v_k
        precision, scaled_means, _ = self._expanded()
        r = responsibility.double()
        grad = r @ scaled_means - x.double().flatten(1) * (r @ precision)
        return log_q, grad.to(x.dtype).view(x.shape)


class BoxPath(_GeometricPath):
    """EBM: from a density on a box to the model's density exp(-E(x) / tau).

    Hard box (``tail_variance=None``): the base is uniform on the box, the target
    exp(-E(x) / tau) restricted to it, and proposals that leave it are reflected back in. Soft box: the
    base is ``q(x) proportional to exp(-||x - clamp(x, low, high)||^2 / (2 tail_variance))``,
    uniform inside the box with Gaussian tails outside (normaliser ``prod_i (high_i - low_i +
    sqrt(2 pi tail_variance_i))``, sampled exactly). The model's energy must then carry the same
    containment term (:meth:`skefh.nn.EBMEnergy.set_support` with ``tail_variance = tau / 2``):
    the target exp(-E(x) / tau) is positive everywhere, and the annealed ratio is the network's
    part of the energy alone.

    Parameters
    ----------
    model : skefh.nn.EBMEnergy
    low, high : torch.Tensor of the input shape
        The box (the training data's range in working units).
    step_size : float, default=0.01
    n_moves : int, default=1
    tail_variance : float or torch.Tensor of the input shape, optional
        Variance of the Gaussian tails outside the box; None for a hard box.
    """

    def __init__(self, model, low, high, step_size: float = 0.01, n_moves: int = 1, tail_variance=None):
        if not bool(torch.all(high > low)):
            raise ValueError("the box must have positive width in every dimension")
        super().__init__(model, step_size, n_moves)
        self.low, self.high = low, high
        if tail_variance is None:
            self.tail_variance = None
            self.log_z0 = float(torch.log(high - low).sum())
            return
        variance = torch.as_tensor(tail_variance, dtype=low.dtype, device=low.device).expand_as(low)
        if not bool(torch.all(variance > 0)):
            raise ValueError("tail_variance must be positive")
        self.tail_variance = variance
        # Per coordinate: the box's width plus the two half-Gaussians' mass sqrt(2 pi v).
        self._tail_mass = torch.sqrt(2 * math.pi * variance)
        self.log_z0 = float(torch.log(high - low + self._tail_mass).sum())

    def sample_base(self, n, generator):
        shape, device, dtype = (n, *self.low.shape), self.low.device, self.low.dtype
        u = torch.rand(shape, generator=generator, device=device, dtype=dtype)
        inside = self.low + u * (self.high - self.low)
        if self.tail_variance is None:
            return inside
        # Each coordinate independently: the box (probability width / normaliser) or one of
        # the two tails (half of the rest each), then a uniform or a half-normal draw.
        width = self.high - self.low
        p_inside = width / (width + self._tail_mass)
        which = torch.rand(shape, generator=generator, device=device, dtype=dtype)
        depth = torch.randn(shape, generator=generator, device=device, dtype=dtype).abs() * self.tail_variance.sqrt()
        below = which < p_inside + 0.5 * (1 - p_inside)
        tails = torch.where(below, self.low - depth, self.high + depth)
        return torch.where(which < p_inside, inside, tails)

    def box(self):
        return None if self.tail_variance is not None else (self.low, self.high)  # a soft box supports every x

    def log_ratio(self, x):
        # A soft box's base is the model's own containment term (variance tau / 2), which the
        # model's density already holds: the ratio is what the network adds.
        ratio = self.model.log_density(x)
        return ratio if self.tail_variance is None else ratio - self._base_and_grad(x)[0]

    def _base_and_grad(self, x):
        if self.tail_variance is None:
            return torch.zeros(x.shape[0], device=x.device, dtype=x.dtype), torch.zeros_like(x)
        outside = x - torch.maximum(torch.minimum(x, self.high), self.low)  # 0 inside the box
        return (
            -(outside.square() / (2 * self.tail_variance)).flatten(1).sum(1),
            -outside / self.tail_variance,
        )


class GRBMPath:
    """GRBM: from a factorial Gaussian x Bern(1/2) to the model; exact block Gibbs moves.

    ``log f_beta(v, h) = (1 - beta) log q(v) + beta (-E(v, h))``, with ``q = N(m, s^2)`` a
    normalised diagonal Gaussian. Every intermediate density is itself a GRBM-like harmonium:
    ``p_beta(h | v) = Bern(sigmoid(beta eta(v)))`` and ``p_beta(v | h)`` Gaussian with precision
    ``(1 - beta) / s^2 + beta / sigma^2``, so the moves are exact Gibbs sweeps.

    By default ``q`` is the model's own quadratic term, ``N(mu, sigma^2)`` (W and b scaled in
    from 0). A trained GRBM puts its mass where the data are, often far from ``mu`` in units of
    ``sigma``; a base fitted to the data (``base_mean``, ``base_variance``: the training rows'
    moments, as Salakhutdinov and Murray 2008 fit the base RBM's visible biases) starts the
    chains there and needs far fewer intermediate distributions for the same accuracy.

    Parameters
    ----------
    model : skefh.nn.GRBMEnergy
    n_moves : int, default=1
        Gibbs sweeps per intermediate distribution.
    base_mean, base_variance : torch.Tensor of shape (n_visible,), optional
        The base Gaussian's mean and per-coordinate variance (> 0); both or neither.
    """

    def __init__(self, model, n_moves: int = 1, base_mean=None, base_variance=None):
        self.model = model
        self.n_moves = n_moves
        if (base_mean is None) != (base_variance is None):
            raise ValueError("give both base_mean and base_variance, or neither")
        var = model.variance().detach()
        n_hidden = model.bias.numel()
        self._own_base = base_mean is None
        if self._own_base:
            # Unnormalised base exp(-quadratic): its normaliser is log Z_0.
            self.log_z0 = float(0.5 * torch.log(2 * math.pi * var).sum() + n_hidden * math.log(2.0))
        else:
            shape = tuple(model.mu.shape)
            base_mean = torch.as_tensor(base_mean, dtype=var.dtype, device=var.device)
            base_variance = torch.as_tensor(base_variance, dtype=var.dtype, device=var.device)
            if tuple(base_mean.shape) != shape or tuple(base_variance.shape) != shape:
                raise ValueError(f"base_mean and base_variance must have shape {shape}")
            if not bool(torch.all(base_variance > 0)) or not bool(torch.all(torch.isfinite(base_mean))):
                raise ValueError("the base needs a finite mean and positive variances")
            self.log_z0 = n_hidden * math.log(2.0)  # q is normalised
        self.base_mean = model.mu.detach() if self._own_base else base_mean
        self.base_variance = var if self._own_base else base_variance
        self.acceptance = 1.0

    def sample_base(self, n, generator):
        mu, std = self.base_mean, self.base_variance.sqrt()
        return mu + std * torch.randn((n, mu.numel()), generator=generator, device=mu.device, dtype=mu.dtype)

    def _log_base(self, v):
        """log q(v) - (-quadratic(v)), the part of the log-density that the base removes (0 for
        the model's own quadratic term)."""
        if self._own_base:
            return torch.zeros(v.shape[0], device=v.device, dtype=torch.float64)
        # In float64: both terms run to thousands of nats on images, their difference to a few.
        v = v.double()
        mean, variance = self.base_mean.double(), self.base_variance.double()
        log_q = -0.5 * ((v - mean).square() / variance + torch.log(2 * math.pi * variance)).sum(1)
        model_variance = self.model.variance().detach().double()
        quadratic = 0.5 * ((v - self.model.mu.detach().double()).square() / model_variance).sum(1)
        return log_q + quadratic

    def log_weight_increment(self, v, beta_prev, beta_next):
        """log f_next(v) - log f_prev(v), with h summed out.

        Unit by unit in float64: the difference of two float32 sums over hundreds of hidden
        units would lose about 1e-3 nats per step, accumulating over the annealing run.
        """
        logits = self.model.posterior_logits(v).double()
        softplus = torch.nn.functional.softplus
        coupling = (softplus(beta_next * logits) - softplus(beta_prev * logits)).sum(1)
        return coupling - (beta_next - beta_prev) * self._log_base(v)

    def transition(self, v, beta, generator):
        model = self.model
        var = model.variance()
        # Precision-weighted blend of the base's mean and the model's conditional mean W h + mu.
        precision = (1 - beta) / self.base_variance + beta / var
        std = precision.rsqrt()
        for _ in range(self.n_moves):
            h = torch.bernoulli(torch.sigmoid(beta * model.posterior_logits(v)), generator=generator)
            mean = ((1 - beta) * self.base_mean / self.base_variance + beta * model.visible_mean(h) / var) / precision
            v = mean + std * torch.randn(mean.shape, generator=generator, device=v.device, dtype=v.dtype)
        return v
