"""GRBM: the Gaussian-Bernoulli RBM baseline of Liao et al. (2022)."""

from __future__ import annotations

from numbers import Integral, Real

import torch
from sklearn.utils._param_validation import Interval, StrOptions

from ..nn import GRBMEnergy
from ..samplers import GibbsLangevinSettings, GRBMPath, grbm_exact_log_partition
from ._base import BaseEnergyEstimator
from ._resolve import default_image_updates

__all__ = ["GRBM"]


class GRBM(BaseEnergyEstimator):
    """Gaussian-Bernoulli RBM with learned variances, trained with Gibbs-Langevin sampling.

    ``E(v, h) = sum_i (v_i - mu_i)^2 / (2 sigma_i^2) - (v / sigma^2)^T W h - b^T h`` with
    learned per-dimension log-variances. Training follows Liao et al.'s "modified CD": every
    update starts ``batch_size`` chains from N(0, I), runs ``gibbs_steps`` rounds of
    ``langevin_steps`` Langevin steps (cosine step schedule restarted every round, step size
    ``step_size * mean(sigma^2)``), and averages the negative statistics over all rounds. Given
    h the visible conditional is Gaussian, so each Langevin block is integrated exactly (stable
    at any step). By default both halves of the chain target the model itself
    (``energy_scale=1``); the reference's energies divided by the batch size
    (``energy_scale="batch"``, the ``paper`` presets) make its x-steps sample a density B times
    wider than the model, and the learned variances then shrink towards zero as training goes
    on.

    Parameters
    ----------
    n_components : int or "auto", default="auto"
        "auto": 1024 for images, 16 for tabular data (``image_shape_`` None).
        Number of hidden units (the reference's MNIST configuration, 4096, is the ``paper``
        preset's; it used 10,000 for Fashion-MNIST).
    image_shape : "auto", tuple of (C, H, W) or None, default="auto"
        Only decides the data scaling (images: observed range to [-1, 1]; tabular: see
        ``scaling``); the GRBM always sees flattened rows. "auto" as in :class:`NNEFH`
        (named columns are tabular).
    scaling : {"auto", "whiten", "standardise"}, default="auto"
        How tabular rows are mapped to working units, as in :class:`NNEFH` ("auto": whitened
        along the training rows' principal axes, which suits the GRBM's diagonal variances);
        images always map their pixel range to [-1, 1].
    gibbs_steps : int or "auto", default="auto"
        "auto": 10 for images, 30 for tabular data (``image_shape_`` None).
        Gibbs rounds per update (the reference's ``CD_step``; 100 in the ``paper`` preset).
    langevin_steps : int, default=10
        L, Langevin steps per Gibbs round.
    step_size : float or ByImageSize, default=20.0
        ``Langevin_eta``; the actual largest step is ``step_size * mean(sigma^2)``.
    energy_scale : "batch" or float, default=1.0
        Factor s on the energy in the Langevin drift, ``v <- v - eps s dE/dv + sqrt(2 eps) xi``.
        "batch" is ``1 / batch_size``, as in the reference code, whose energies are divided by
        the batch size: its x-steps then target exp(-E / B), a density B times hotter than the
        model's, while the latent draws stay at the model's p(h | v). 1.0 makes both halves
        target the model, exp(-E): the negatives then come from the density that ``score``
        measures, and the variances do not collapse.
    step_schedule : {"cosine", "constant"}, default="cosine"
    sampler : {"gibbs_langevin", "gibbs"}, default="gibbs_langevin"
        "gibbs" draws v ~ p(v | h) exactly instead of Langevin steps.
    negative_samples : {"all", "last"}, default="all"
        Average the negative statistics over every Gibbs round (reference) or use the last.
    sample_mean : bool, default=False
        ``sample`` returns the conditional mean ``W h + mu`` of the final latent state, as the
        reference does for its figures, instead of the last visible state (a draw from the
        model, the default).
    init_var : float, default=1.0
        Initial variance sigma^2.
    learn_variance : bool, default=True
        Learn the per-dimension variances (the reference's GRBM). False holds sigma^2 at
        ``init_var`` throughout training: with short-run negatives the learned variances can
        settle above the residual the model leaves on the data (the variance absorbs the
        difference between the data's and the chains' hidden statistics), and the draws of
        ``sample`` then carry that much more pixel noise (the generation page measures it on
        Fashion-MNIST).
    batch_size : int or "auto", default="auto"
        "auto": 256 for images, 512 for tabular data (``image_shape_`` None).
    learning_rate : float, default=0.01
        Learning rate of ``optimizer`` (the reference's SGD uses 0.01).
    max_iter : int or "auto", default="auto"
        "auto": 1500 for images of at least 16x16 pixels, 1000 for smaller images and for
        tabular data. Number of parameter updates of ``fit`` (the paper trains 50,000); 0
        initialises the model without training it (the untrained-network baseline).
    optimizer : {"adam", "sgd"}, default="adam"
    lr_schedule : {"constant", "cosine", "linear"}, default="cosine"
    data_noise : float or ByImageSize, default=0.0
        Standard deviation of the Gaussian noise added to each data batch.
    max_grad_norm : float or None, default=10.0
        Clip the parameter-gradient norm of each update.
    energy_l2 : float, default=0.0
        Weight of the penalty ``mean(E_data^2) + mean(E_samples^2)`` (Du & Mordatch 2019); 0, as
        in the reference.
    weight_decay : float, default=0.0
        Decoupled weight decay (AdamW; plain L2 for SGD) on all parameters.
    features : {"mean", "eta"}, default="mean"
        ``transform`` returns p(h = 1 | v) or the logits eta(v).
    device : "auto", str or torch.device, default="auto"
        "auto" uses CUDA when available, else the CPU; resolved in ``fit`` (``device_``).
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, minibatch order and sampling; an int makes ``fit`` and ``sample``
        reproducible on the CPU.
    verbose : int, default=0
        0 writes one line to stderr with the expected duration when a fit will take more than
        a minute (projected from its first updates); 1 shows a progress bar, 2 adds a log line
        every 100 updates; -1 is silent.
    checkpoint_path : str or path-like, default=None
        Write a resumable checkpoint there every ``checkpoint_every`` updates and at the end. If
        the file exists when ``fit`` starts, the fit resumes from it.
    checkpoint_every : int, default=1000
    on_divergence : {"raise", "restore"}, default="raise"
        On non-finite values, exploding chains, or data and sample energies that separate
        without bound (the checks of :class:`skefh.training.DivergenceMonitor`): raise
        :class:`skefh.training.DivergenceError`, or roll back to the last good state (kept every
        100 updates), halve the learning rate, warn (:class:`skefh.training.DivergenceWarning`)
        and run the discarded updates again (at most three times, then raise), so that a fit
        that returns has performed ``max_iter`` updates.
    callbacks : list of skefh.training.Callback, default=None
        Extra hooks called after every update.
    log_partition : {"auto", "ais", "exact"} or None, default="auto"
        The log-partition function log Z that normalises ``score_samples``. "auto": ``fit``
        computes it only where it is exact and cheap (a GRBM with few hidden units); otherwise
        ``score_samples`` estimates it by annealed importance sampling on first use, keeps it
        privately, and raises :class:`skefh.estimators.LikelihoodError` if that estimate is
        unreliable. "ais": ``fit`` ends with an AIS estimate and a lower bound on log Z (a
        noticeable addition to a short CPU fit; see the likelihood page of the docs), stored in
        ``log_partition_``, with a :class:`skefh.estimators.LikelihoodWarning` if unreliable.
        "exact": enumeration (GRBM with few hidden units). None: no log Z, and ``score_samples``
        is the log-density up to a constant (unless :meth:`estimate_log_partition` is called).
    ais_chains : int, default=64
        Chains of the AIS estimate.
    ais_steps : int or "auto", default="auto"
        Intermediate distributions of the AIS estimate. "auto": 1,000 for rows of fewer than
        256 values, 5,000 from there up (Fashion-MNIST's 784 pixels need them for a quarter of
        the chains to count; see the likelihood page of the docs).

    Attributes
    ----------
    module_ : skefh.nn.GRBMEnergy
    log_partition_, log_partition_std_, log_partition_ess_, log_partition_lower_bound_, log_partition_upper_
        As in :class:`NNEFH`. With ``log_partition="auto"`` ``fit`` computes log Z exactly
        (a sum over the 2^H hidden states) for up to 20 hidden units; beyond, ``score_samples``
        estimates it by AIS on first use (privately), or ``log_partition="ais"`` makes ``fit``
        store an AIS estimate and its lower bound (None when log Z is exact).
    image_shape_, range_map_, device_, n_features_in_, n_iter_, history_
        As in :class:`NNEFH`.

    Notes
    -----
    Parameters changed with ``set_params`` after fitting take effect at the next ``fit``, as
    scikit-learn's do: ``sample`` draws with the sampler of the last ``fit`` or ``partial_fit``
    (``step_size``, ``energy_scale``, ``step_schedule``, ``sampler``, the step counts;
    :meth:`sample`'s keyword arguments change it for one call). ``partial_fit`` reads the
    training parameters anew at each call; ``features`` is read by each ``transform``. One
    fitted estimator may be used from several threads: calls that evaluate or train its model
    take turns on it.

    ``score_samples`` is ``-F(v) - log Z`` plus the log-Jacobian of the data scaling, with the
    closed form ``F(v) = sum (v - mu)^2 / (2 sigma^2) - sum softplus(W^T (v / sigma^2) + b)``.

    References
    ----------
    R. Liao, S. Kornblith, M. Ren, D. J. Fleet, G. Hinton, "Gaussian-Bernoulli RBMs Without
    Tears", arXiv:2210.10318 (2022).

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skefh import GRBM
    >>> X = load_digits().data[:64]
    >>> est = GRBM(n_components=8, gibbs_steps=2, batch_size=32, max_iter=2,
    ...            random_state=0).fit(X)
    >>> est.transform(X).shape
    (64, 8)
    """

    _feature_options = ("mean", "eta")

    #: What "auto" means for images and for tabular data (see ``_resolve_params``).
    _auto_defaults = {
        "n_components": (1024, 16),
        "gibbs_steps": (10, 30),
        "batch_size": (256, 512),
        "max_iter": (default_image_updates(1500), 1000),
    }

    _parameter_constraints: dict = {
        **BaseEnergyEstimator._parameter_constraints,
        "n_components": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "gibbs_steps": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "energy_scale": [StrOptions({"batch"}), Interval(Real, 0, None, closed="neither")],
        "step_schedule": [StrOptions({"cosine", "constant"})],
        "sampler": [StrOptions({"gibbs_langevin", "gibbs"})],
        "negative_samples": [StrOptions({"all", "last"})],
        "sample_mean": ["boolean"],
        "init_var": [Interval(Real, 0, None, closed="neither")],
        "learn_variance": ["boolean"],
        "features": [StrOptions({"mean", "eta"})],
        "ais_steps": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
    }

    def __init__(
        self, n_components="auto", *, image_shape="auto", scaling="auto", gibbs_steps="auto", langevin_steps=10,
        step_size=20.0,
        energy_scale=1.0, step_schedule="cosine", sampler="gibbs_langevin", negative_samples="all",
        sample_mean=False, init_var=1.0, learn_variance=True, batch_size="auto", learning_rate=0.01, max_iter="auto",
        optimizer="adam",
        lr_schedule="cosine", data_noise=0.0, max_grad_norm=10.0, energy_l2=0.0, weight_decay=0.0, features="mean",
        device="auto", random_state=None, verbose=0, checkpoint_path=None, checkpoint_every=1000,
        on_divergence="raise", callbacks=None, log_partition="auto", ais_chains=64, ais_steps="auto",
    ):
        self.n_components = n_components
        self.image_shape = image_shape
        self.scaling = scaling
        self.gibbs_steps = gibbs_steps
        self.langevin_steps = langevin_steps
        self.step_size = step_size
        self.energy_scale = energy_scale
        self.step_schedule = step_schedule
        self.sampler = sampler
        self.negative_samples = negative_samples
        self.sample_mean = sample_mean
        self.init_var = init_var
        self.learn_variance = learn_variance
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.optimizer = optimizer
        self.lr_schedule = lr_schedule
        self.data_noise = data_noise
        self.max_grad_norm = max_grad_norm
        self.energy_l2 = energy_l2
        self.weight_decay = weight_decay
        self.features = features
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.checkpoint_path = checkpoint_path
        self.checkpoint_every = checkpoint_every
        self.on_divergence = on_divergence
        self.callbacks = callbacks
        self.log_partition = log_partition
        self.ais_chains = ais_chains
        self.ais_steps = ais_steps

    def _resolved_energy_scale(self, p: dict) -> float:
        if isinstance(p["energy_scale"], str):
            return 1.0 / p["batch_size"]  # the reference divides every energy by the batch size
        return float(p["energy_scale"])

    @property
    def _negative_samples(self):
        return self.negative_samples

    def _input_shape(self) -> tuple:
        return (self.n_features_in_,)  # the GRBM sees flat rows, whatever the image shape

    def _build_module(self, input_shape, generator):
        return GRBMEnergy(input_shape[0], self._trained_params["n_components"], init_var=self.init_var,
                          generator=generator)

    def _make_trainer(self, *args, **kwargs):
        # Read at every fit and partial_fit, as the other training parameters are: a variance
        # without a gradient is skipped by the optimizer and keeps its value.
        self.module_.log_var.requires_grad_(bool(self.learn_variance))
        return super()._make_trainer(*args, **kwargs)

    def _sampler_settings(self, p: dict) -> GibbsLangevinSettings:
        return GibbsLangevinSettings(
            n_gibbs=p["gibbs_steps"],
            n_langevin=p["langevin_steps"],
            step_size=p["step_size"],
            energy_scale=self._resolved_energy_scale(p),
            schedule=p["step_schedule"],
            visible_step="exact" if p["sampler"] == "gibbs" else "langevin",
        )

    def _chain_limit(self) -> float:
        # The reference's Langevin runs at temperature 1 / energy_scale (the batch size): its
        # chains are that much wider than the data by design.
        hot = 1.0 / self._resolved_energy_scale(self._trained_params) if self.sampler != "gibbs" else 1.0
        return 100.0 * max(1.0, hot) ** 0.5

    def _finalise_samples(self, out: dict) -> torch.Tensor:
        return self.module_.visible_mean(out["z"]) if self.sample_mean else out["x"]

    def _feature_tensor(self, x):
        eta = self.module_.posterior_logits(x)
        return torch.sigmoid(eta) if self.features == "mean" else eta

    def _n_transform_features(self) -> int:
        return self.module_.weight.shape[1]

    #: "auto" enumerates the 2^H hidden states exactly up to this many hidden units.
    _exact_partition_limit = 20

    def _exact_partition_tractable(self) -> bool:
        return self.module_.weight.shape[1] <= self._exact_partition_limit

    def _exact_log_partition(self) -> float:
        return grbm_exact_log_partition(self.module_)

    #: Row width from which ``ais_steps="auto"`` runs the longer annealing schedule.
    _long_ais_features = 256

    def _resolved_ais_steps(self) -> int:
        if self.ais_steps != "auto":
            return int(self.ais_steps)
        return 5000 if self.n_features_in_ >= self._long_ais_features else 1000

    def _annealing_path(self):
        # Base: a diagonal Gaussian at the training rows' moments (no narrower than the model's
        # own sigma^2, below which no part of its marginal is), so the chains start where the
        # model's mass is; the model's own quadratic term where no rows were kept.
        if self._bound_rows is None:
            return GRBMPath(self.module_)
        variance = self.module_.variance().detach()
        rows = self._to_tensor(self._bound_rows).to(variance.dtype)
        base_variance = torch.maximum(rows.var(0), variance) if len(rows) > 1 else variance
        return GRBMPath(self.module_, base_mean=rows.mean(0), base_variance=base_variance)
