"""The interface that samplers and the training loop see: an energy over (x, z).

Every model is an ``nn.Module`` whose ``forward(x, z)`` returns the per-sample joint energy
E(z, x) of shape (B,). Models without a latent (the EBM) ignore ``z``. Samplers only call the
methods defined here, so one Langevin implementation and one Gibbs-Langevin driver serve all
three models.
"""

from __future__ import annotations

import threading
import warnings
import weakref
from contextlib import contextmanager
from typing import Callable, Iterable, Iterator, Optional

import torch
from torch import nn
from torch.nn.utils import parametrize

__all__ = ["EnergyModel", "EnergyGradFn", "GradFn", "input_gradient", "compiled", "module_lock", "sampling_mode"]

#: ``grad_fn(x) -> dE/dx`` with the same shape as ``x`` (per-sample gradients).
GradFn = Callable[[torch.Tensor], torch.Tensor]
#: ``fn(x) -> (E, dE/dx)``: per-sample energies of shape (B,) and their input gradients.
EnergyGradFn = Callable[[torch.Tensor], "tuple[torch.Tensor, torch.Tensor]"]


def input_gradient(net: nn.Module, x: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
    """Vector-Jacobian product ``J_net(x)^T direction``, differentiating w.r.t. ``x`` only.

    No graph is kept for parameter gradients (``create_graph=False``); callers that want the
    fastest path set ``requires_grad=False`` on the parameters first
    (:func:`skefh.samplers.sampling_mode`).

    Parameters
    ----------
    net : torch.nn.Module
        Maps ``(B, ...)`` to ``(B, N)``.
    x : torch.Tensor
    direction : torch.Tensor of shape (B, N) or (N,)

    Returns
    -------
    torch.Tensor, same shape as ``x``
    """
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        out = net(x)
        (grad,) = torch.autograd.grad(out, x, grad_outputs=direction.expand_as(out))
    return grad


class EnergyModel(nn.Module):
    """Base class of the energy modules.

    Subclasses implement :meth:`energy`, :meth:`free_energy` and :meth:`conditional_grad`; those
    with a Bernoulli latent also implement :meth:`posterior_logits`.
    """

    #: Whether the model has a Bernoulli latent layer z.
    has_latent: bool = True

    #: tau: the model's density is p(x, z) proportional to exp(-E(z, x) / tau). The energy is
    #: kept in its own units (the scale of the quadratic term), so tau only sets how sharp the
    #: density is: the posterior is Bern(sigmoid(eta / tau)) and the free energy is tempered.
    temperature: float = 1.0

    def forward(self, x: torch.Tensor, z: Optional[torch.Tensor] = None, return_logits: bool = False):
        """Per-sample joint energy E(z, x); with ``return_logits`` also eta(x) (latent models).

        One call computes both, so that a training step (and DistributedDataParallel) runs a
        single forward pass for the loss and any penalty on the latent logits.
        """
        if not return_logits:
            return self.energy(x, z)
        if not self.has_latent:
            raise ValueError(f"{type(self).__name__} has no latent logits")
        return self.joint_energy_and_logits(x, z)

    def joint_energy_and_logits(self, x: torch.Tensor, z: torch.Tensor):
        """E(z, x) and eta(x) from one pass (latent models: E = Q(x) - z . eta(x))."""
        eta = self.posterior_logits(x)
        return self.quadratic(x) - (z * eta).sum(1), eta

    def observe_data(self, x: torch.Tensor) -> None:
        """Called by the trainer with every data batch before its update; models that keep
        running statistics of the data (the centred NN-EFH) update them here."""

    def centre_on(self, batches: Iterable[torch.Tensor]) -> None:
        """Called at the end of a fit with the training data in batches; models that keep
        statistics of the data (the centred NN-EFH) fix them on it here."""

    def quadratic(self, x: torch.Tensor) -> torch.Tensor:
        """The part of the energy that does not involve z (latent models: E = Q(x) - z . eta(x))."""
        raise NotImplementedError

    # -- the maths every model provides -------------------------------------------------------
    def energy(self, x: torch.Tensor, z: Optional[torch.Tensor]) -> torch.Tensor:
        """Joint energy E(z, x) per sample, shape (B,)."""
        raise NotImplementedError

    def free_energy(self, x: torch.Tensor) -> torch.Tensor:
        """Marginal free energy ``F(x) = -tau log sum_z exp(-E(z, x) / tau)``, shape (B,).

        In the energy's units, so that the marginal density is ``exp(-F(x) / tau) / Z``.
        """
        raise NotImplementedError

    def log_density(self, x: torch.Tensor) -> torch.Tensor:
        """Unnormalised log-density ``-F(x) / tau`` of the marginal, shape (B,)."""
        return -self.free_energy(x) / self.temperature

    def conditional_grad(self, z: Optional[torch.Tensor]) -> GradFn:
        """Return ``grad_fn(x) = dE(z, x)/dx`` for a fixed latent ``z``.

        Work that depends only on ``z`` (e.g. ``W^T z``) is done once here, not at every
        Langevin step.
        """
        raise NotImplementedError

    def conditional_energy(self, z: Optional[torch.Tensor]) -> EnergyGradFn:
        """Return ``fn(x) = (E(z, x), dE(z, x)/dx)`` for a fixed latent ``z``.

        What a Metropolis-adjusted Langevin step needs: the energy to accept or reject a move,
        and its gradient for the next proposal, from one forward and one backward pass.
        """

        def energy_and_grad(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            with torch.enable_grad():
                x = x.detach().requires_grad_(True)
                energy = self.energy(x, z)
                (grad,) = torch.autograd.grad(energy.sum(), x)
            return energy.detach(), grad

        return energy_and_grad

    def free_energy_grad(self, x: torch.Tensor) -> torch.Tensor:
        """dF/dx per sample (Langevin on the marginal, AIS transitions)."""
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(self.free_energy(x).sum(), x)
        return grad

    # -- latent layer ---------------------------------------------------------------------------
    def posterior_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Natural parameters eta(x) of p(z | x) = Bern(sigmoid(eta)), shape (B, K)."""
        raise NotImplementedError(f"{type(self).__name__} has no latent layer")

    def posterior_probabilities(self, x: torch.Tensor, temperature: Optional[float] = None) -> torch.Tensor:
        """p(z_k = 1 | x) = sigmoid(eta_k(x) / tau), shape (B, K).

        ``temperature`` overrides tau (the paper's sampler draws z at 1 whatever its x-steps' tau).
        """
        tau = self.temperature if temperature is None else temperature
        return torch.sigmoid(self.posterior_logits(x) / tau)

    def sample_latent(
        self,
        x: torch.Tensor,
        generator: Optional[torch.Generator] = None,
        temperature: Optional[float] = None,
    ) -> Optional[torch.Tensor]:
        """Draw z ~ p(z | x) at ``temperature`` (default tau); ``None`` without a latent."""
        if not self.has_latent:
            return None
        return torch.bernoulli(self.posterior_probabilities(x, temperature), generator=generator)

    # -- optional -------------------------------------------------------------------------------
    def sample_visible(
        self,
        z: torch.Tensor,
        generator: Optional[torch.Generator] = None,
        temperature: Optional[float] = None,
    ) -> torch.Tensor:
        """Exact draw x ~ p_T(x | z) of exp(-E / T) (default T = tau), where the emission is a standard family."""
        raise NotImplementedError(
            f"{type(self).__name__} has no closed-form emission; use Langevin steps"
        )

    def step_size_scale(self) -> float:
        """Factor multiplying the Langevin step size (1 unless a model says otherwise)."""
        return 1.0


# One re-entrant lock per module, kept beside it (a lock neither pickles nor deep-copies).
_MODULE_LOCKS: "weakref.WeakKeyDictionary[nn.Module, threading.RLock]" = weakref.WeakKeyDictionary()
_MODULE_LOCKS_GUARD = threading.Lock()


def module_lock(model: nn.Module) -> threading.RLock:
    """The re-entrant lock that :func:`sampling_mode` holds on ``model``.

    Code that trains ``model`` while other threads may sample from it holds this lock across
    each forward and backward pass (the estimators hold it for a whole ``fit`` or
    ``partial_fit``), so that no thread freezes the parameters in the middle of an update.
    """
    with _MODULE_LOCKS_GUARD:
        lock = _MODULE_LOCKS.get(model)
        if lock is None:
            lock = _MODULE_LOCKS[model] = threading.RLock()
        return lock


@contextmanager
def sampling_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Freeze ``model`` for sampling and restore it afterwards; one thread at a time.

    Training, ``transform``, the samplers and AIS all evaluate a model whose weights must not
    move, so this lives with the models (also importable as ``skefh.samplers.sampling_mode``).
    Parameters stop requiring gradients (the graph built at every Langevin step has no parameter
    edges, and nothing can accumulate into their ``.grad``; ``torch.autograd.grad(E, x)`` alone
    would already skip the weight gradients), which also lets dense layers and the first
    convolution's input gradient take their oneDNN paths on the CPU (:mod:`skefh.nn.frozen`).
    The module is put in eval mode, and parametrised weights (spectral normalisation) are
    computed once for the whole chain instead of at every step.

    Those flags belong to the module, which every thread shares: saved and restored without a
    lock, two overlapping blocks restored each other's frozen flags and left the model
    untrainable. The block therefore holds :func:`module_lock`: blocks on one model from several
    threads run one after another, a block nested in another on the same thread is free (the
    lock is re-entrant, and the inner block restores what it found: frozen), and the outermost
    block restores the flags it found.
    """
    with module_lock(model):
        flags = [p.requires_grad for p in model.parameters()]
        was_training = model.training
        for p in model.parameters():
            p.requires_grad_(False)
        model.eval()
        try:
            with parametrize.cached():
                yield model
        finally:
            for p, flag in zip(model.parameters(), flags):
                p.requires_grad_(flag)
            model.train(was_training)


def _compiled_call_hook_works() -> bool:
    """Whether calling a module still goes through its ``_compiled_call_impl`` when that is set."""
    probe = nn.Identity()
    marker = object()
    probe._compiled_call_impl = lambda *args, **kwargs: marker
    try:
        return probe(None) is marker
    except Exception:  # a PyTorch that changed the hook's signature: leave it alone
        return False


_compiled_call_hook: Optional[bool] = None  # _compiled_call_hook_works(), once it has run


@contextmanager
def compiled(module: nn.Module, mode=False):
    """Run ``module`` through ``torch.compile`` inside the block, eagerly again after it.

    The module object, its parameters and its ``state_dict`` keys are unchanged (unlike wrapping
    it in ``torch.compile(module)``), so checkpoints and pickles do not depend on compilation.

    Parameters
    ----------
    module : torch.nn.Module
    mode : bool or str, default=False
        False: no compilation; True or "default"; or a ``torch.compile`` mode such as
        "reduce-overhead" (CUDA graphs) or "max-autotune".

    Notes
    -----
    The compiled call is installed in ``module._compiled_call_impl``, the private attribute that
    ``nn.Module.__call__`` runs instead of the module when it is set. The public
    ``nn.Module.compile()`` sets that same attribute, but nothing public takes it off again, so
    the attribute is set and restored here directly, after a probe (run once) has checked that
    calling a module still reads it. On a PyTorch where it does not, the block warns and runs the
    module eagerly: the same results, uncompiled.
    """
    global _compiled_call_hook
    if not mode:
        yield module
        return
    if _compiled_call_hook is None:
        _compiled_call_hook = _compiled_call_hook_works()
    if not _compiled_call_hook:
        warnings.warn(
            f"compile={mode!r} is ignored: this PyTorch ({torch.__version__}) no longer runs "
            "nn.Module._compiled_call_impl, so the module runs uncompiled",
            RuntimeWarning,
            stacklevel=3,
        )
        yield module
        return
    kwargs = {} if mode is True or mode == "default" else {"mode": mode}
    previous = getattr(module, "_compiled_call_impl", None)
    module._compiled_call_impl = torch.compile(module._call_impl, **kwargs)
    try:
        yield module
    finally:
        module._compiled_call_impl = previous
