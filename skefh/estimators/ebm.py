"""EBM: the paper's energy-based baseline with the same network as the NN-EFH."""

from __future__ import annotations

from numbers import Real

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions

from ..nn import EBMEnergy
from ..samplers import BoxPath, GibbsLangevinSettings
from ._base import BaseEnergyEstimator
from ._neural import NeuralStatisticsMixin
from ._resolve import default_image_updates

__all__ = ["EBM"]


class EBM(NeuralStatisticsMixin, BaseEnergyEstimator):
    """Energy-based model ``E(x) = w^T U(x) + c`` trained with short-run Langevin dynamics.

    The paper's baseline: the same sufficient-statistics network as :class:`NNEFH`, read out
    by a learned vector instead of a latent layer. Each update runs ``batch_size`` chains of
    ``langevin_steps`` Langevin steps.

    The defaults ("auto") depend on the kind of data. Images get the NN-EFH's CPU-sized
    network (32 filters, U of 256, strided convolutions, one attention block) and the paper's
    short-run recipe: every update's 30-step chains restarted from noise (no replay buffer),
    with a learning rate annealed to 0 over 4,500 updates (1,000 for images under 16x16
    pixels). The paper's scale is ``skefh.presets.make_estimator("ebm", "paper")``. Tabular
    data get a small MLP at temperature 1 with persistent, Metropolis-adjusted chains (a
    replay buffer), so that ``sample`` draws from the density ``score`` measures.

    Parameters
    ----------
    n_statistics : int or "auto", default="auto"
        "auto": 256 for images, 64 for tabular data (``image_shape_`` None).
        N, the number of sufficient statistics U(x) (the network's last layer).
    n_filters : int, default=32
        Width of the first convolution of the image network (then 2x and 4x); unused by the MLP.
    image_shape : "auto", tuple of (C, H, W) or None, default="auto"
        How to view a row of X as an image. "auto" reads rows of H*H values (H >= 8) as 1xHxH
        and rows of 3*H*H values as 3xHxH, for plain arrays only: data with column names (a
        DataFrame; ``feature_names_in_``) are tabular whatever their width, and so is any other
        length. None forces tabular data (the MLP). The resolved value is ``image_shape_``; with
        ``verbose``, ``fit`` prints one line saying what "auto" resolved to and why.
    scaling : {"auto", "whiten", "standardise"}, default="auto"
        How tabular rows are mapped to working units, as in :class:`NNEFH` ("auto": whitened
        along the training rows' principal axes); images always map their pixel range to [-1, 1].
    statistics : {"auto", "conv", "mlp"} or callable, default="auto"
        The network U. "auto": "conv" for images, "mlp" otherwise. A callable is called as
        ``statistics(input_shape, n_statistics)`` and must return a ``torch.nn.Module``.
    attention : bool or "last", default="last"
        Non-local attention blocks in the image network: after its first two stages (True, the
        paper's network), after the second only ("last"), or none.
    downsample : {"maxpool", "avgpool", "stride"}, default="stride"
        How the image network halves the resolution at each stage (see
        :class:`skefh.nn.ConvStatistics`).
    activation : {"leaky_relu", "swish"}, default="leaky_relu"
        Non-linearity of U (LeakyReLU with slope 0.05 in the reference).
    spectral_norm : bool, default=False
        Spectral normalisation of U's convolutions and dense layers (a stabiliser; see
        :func:`skefh.nn.build_statistics_net` for what it leaves out).
    langevin_steps : int or "auto", default="auto"
        "auto": 30 for images, 20 for tabular data (``image_shape_`` None).
        Steps of Langevin per update (``sample`` runs more by default: half as many again from
        noise for a model trained on chains from noise, twenty times as many for
        Metropolis-adjusted chains; see :meth:`sample`). The paper does not state
        it; the ``paper`` preset's 100 is the first author's first EBM configuration and
        Nijkamp et al.'s short-run setting.
    step_size : float or ByImageSize, default=0.05
        Langevin step size epsilon: each step is
        ``x <- x - epsilon dE/dx + sqrt(2 epsilon tau) xi`` on the per-sample energy.
        A :class:`~skefh.presets.ByImageSize` rule gives one value for images under 16x16
        pixels (and tables) and another for larger ones, resolved in ``fit`` (so does
        ``data_noise``'s).
    temperature : float or "auto", default="auto"
        "auto": 1e-3 for images, 1 for tabular data (``image_shape_`` None).
        tau: the model is ``exp(-E(x) / tau)`` and the Langevin chains target it. The paper's
        EBM steps (step 1 on the summed energy, temperature 5e-5, as in the first author's code)
        are ``step_size=1, temperature=5e-5``.
    chain_bounds : "auto", (low, high) or None, default="auto"
        A box that the visible chains of training and ``sample`` are clipped to after every
        Langevin step (projected Langevin; the chains then target the density restricted to the
        box). "auto" is the data's observed range for images (pixels cannot leave it; image EBMs
        clip their chains in the same way) and no box for tabular data, whose densities have
        Gaussian tails; a pair of numbers is a box in the units of X (the same for every
        feature); None leaves the chains unbounded. On Fashion-MNIST at the ``cpu`` preset,
        training that restarts many chains from noise ran away without the box and stayed
        finite with it (see the generation page of the docs). With unadjusted steps, ``score``,
        ``score_samples`` and the log-partition function are those of the unrestricted density.
        With ``metropolis=True`` proposals that leave the box are reflected back in (the
        acceptance ratio accounts for it), the chains sample the density restricted to the box
        exactly, and ``score`` measures that density (rows
        outside the box score -inf); "auto" then widens an image's box by 5 % of its width on
        each side, so that held-out images a little beyond the training range keep a density.
    replay_buffer : int or "auto", default="auto"
        "auto": 0 for images, 10000 for tabular data (``image_shape_`` None).
        Size of a replay buffer of past chain states (persistent chains, as in Du & Mordatch
        2019). Each update restarts its visible chains from stored final states of earlier
        updates (all but ``replay_reinit`` of them, which restart from noise), so chains
        accumulate Langevin steps across updates and stay near the model; ``sample`` then starts
        from the buffer by default (``init="auto"``). 0 is the paper's recipe: every update
        restarts its chains from N(0, I), and the model learns to generate from noise. The
        buffer (``replay_buffer`` x input size float32 values, 31 MB for 10,000 Fashion-MNIST
        images) is part of the fitted state: checkpoints, pickles and ``partial_fit`` carry
        it. Over a long fit on Fashion-MNIST the features' linear probe
        held up with the buffer, and without it changed by less than a paired test finds
        significant (see the stability page of the docs).
    replay_reinit : float, default=0.05
        With a replay buffer, the probability that a chain restarts from fresh noise instead. It
        may be changed between ``partial_fit`` calls (``set_params``); the stored chains are
        kept. On digits, restarting 0.3-0.6 of the chains gave better samples than 0.05, both
        from the buffer and from noise; on Fashion-MNIST with unbounded chains
        (``chain_bounds=None``), 0.3 made training diverge, as restarting every chain then does
        (see the generation page of the docs).
    sampler_precision : {"float32", "bfloat16"}, default="float32"
        Precision of the Langevin energy gradients. "bfloat16" runs them under bfloat16
        autocast: faster on CPUs with native bfloat16 (and on recent GPUs), with gradients
        close to float32's (speed and error on the performance page of the docs, from
        ``benchmarks/bench_sampler.py``).
        Training losses and the chain state stay float32.
    metropolis : bool or "auto", default="auto"
        "auto": False for images, True for tabular data (``image_shape_`` None).
        Metropolis-adjusted Langevin (MALA) steps in training and ``sample``: each step is a
        proposal accepted or rejected so that the chains leave the model's density invariant at
        any ``step_size`` (proposals that leave ``chain_bounds`` are reflected back in). Unadjusted steps
        (False) sample a density that is off by O(``step_size``) and overshoot where the energy
        is steep; adjusted ones make ``sample`` draw from the density that ``score`` measures,
        given enough steps to mix.
    compile : bool or {"default", "reduce-overhead", "max-autotune"}, default=False
        Wrap U in ``torch.compile`` during ``fit`` and ``sample`` (a string selects the mode;
        "reduce-overhead" uses CUDA graphs). It pays off on GPUs; on CPUs it is slower (see the
        performance page of the docs).
    batch_size : int, default=64
    learning_rate : float or "auto", default="auto"
        "auto": 2e-4 for images, 1e-3 for tabular data (``image_shape_`` None).
        Adam's learning rate (the paper does not state it; the first author's code uses 1e-4).
    max_iter : int or "auto", default="auto"
        "auto": 4500 for images of at least 16x16 pixels, 1000 for smaller images and for
        tabular data. Number of parameter updates of ``fit`` (the paper trains 50,000); 0
        initialises the model without training it (the untrained-network baseline).
    optimizer : {"adam", "sgd"}, default="adam"
    lr_schedule : {"constant", "cosine", "linear", "auto"}, default="auto"
        "auto": "cosine" for images, "constant" for tabular data (``image_shape_`` None).
        How the learning rate falls over ``max_iter`` updates of ``fit`` ("cosine" anneals to 0).
    data_noise : float or ByImageSize, default=0.03
        Standard deviation of the Gaussian noise added to each data batch, in working units
        (images in [-1, 1]). With Metropolis-adjusted chains in a box (``metropolis=True`` and
        ``chain_bounds`` set) noisy rows are reflected back into the box, the density's support.
        The noise also bounds how sharp the learnt density gets, and so how small the chains'
        ``step_size`` must be for them to keep accepting their moves.
    max_grad_norm : float or None, default=1.0
        Clip the parameter-gradient norm of each update.
    energy_l2 : float, default=0.0
        Weight of the penalty ``mean(E_data^2) + mean(E_samples^2)`` (Du & Mordatch 2019); not
        in the paper. It pins the mean data and sample energies near ``-1 / (2 energy_l2)`` and
        ``+1 / (2 energy_l2)``, a permanent gap between samples and data: it keeps training
        finite but stops the samples from matching the data. The ``paper`` presets set 0.01,
        because their sampler (chains restarted from noise every update) diverges without it;
        the default sampler with a replay buffer needs no penalty. On Fashion-MNIST with the CPU
        preset, training with the paper's sampler diverged early without it (see the stability
        page of the docs).
    gradient_penalty : float or "auto", default="auto"
        "auto": 0.01 for images, 0 for tabular data (``image_shape_`` None).
        gamma of the penalty ``gamma / 2 * mean ||dE/dx||^2`` on each (noisy) data batch, in
        working units: the R1 penalty of Mescheder et al. (2018), with the energy in the role
        of the discriminator; not in the paper. Chains of a fixed budget follow an energy only
        as steep as their steps allow; without the penalty the energy at the data can steepen
        until data and sample energies separate (a ``DivergenceError``), as the image defaults
        did without it at some training seeds (see the stability page of the docs). The penalty
        changes what is fitted (the data are no longer a stationary point of the likelihood
        alone), so the tabular defaults, whose ``score`` is the point, go without it.
    weight_decay : float, default=0.0
        Decoupled weight decay (AdamW; plain L2 for SGD) on all parameters.
    mode_jumps : bool or "auto", default="auto"
        "auto": True for tabular data, False for images. Add to every training update one
        independence Metropolis-Hastings move per chain, from a Gaussian kernel density on up to
        512 training rows (:class:`skefh.samplers.KernelJump`), so that persistent chains carry
        mass between modes far apart and the model's mode weights get corrected (as
        :class:`NNEFH`'s; measured on the likelihood page of the docs).
    annealed_restarts : int or ByImageSize, default=0
        Every ``annealed_restart_every`` updates, overwrite this many random chains of the
        replay buffer with importance-weighted draws from one forward AIS run on the path
        ``score`` uses (:class:`skefh.training.AnnealedRestarts`), so that the training sees,
        and removes, modes away from the data that persistent chains never visit; as
        :class:`NNEFH`'s (measured there). 0 runs none; needs ``replay_buffer`` > 0.
    annealed_restart_every : int, default=5
        Updates between two annealed restarts.
    annealed_restart_steps : int, default=300
        Intermediate distributions of each annealed restart's AIS run.
    features : {"U"}, default="U"
        ``transform`` returns the penultimate layer U(x).
    device : "auto", str or torch.device, default="auto"
        "auto" uses CUDA when available, else the CPU; resolved in ``fit`` (``device_``).
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, minibatch order and sampling; an int makes ``fit`` and ``sample``
        reproducible on the CPU.
    verbose : int, default=0
        0 writes one line to stderr with the expected duration when a fit will take more than
        a minute (projected from its first updates), as a fit at the image defaults on a CPU
        does; 1 shows a progress bar, 2 adds a log line every 100 updates; -1 is silent.
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
    ais_steps : int, default=1000
        Intermediate distributions of the AIS estimate.

    Attributes
    ----------
    module_ : skefh.nn.EBMEnergy
    support_ : ndarray of shape (2, n_features)
        Lower and upper corners of the box outside which the density is contained (see Notes),
        in working units.
    log_partition_, log_partition_std_, log_partition_ess_, log_partition_lower_bound_, log_partition_upper_
        As in :class:`NNEFH`.
    image_shape_, range_map_, device_, n_features_in_, n_iter_, history_
        As in :class:`NNEFH`.

    See Also
    --------
    NNEFH : the same network with a Bernoulli latent layer and Gibbs-Langevin sampling.

    Notes
    -----
    Parameters changed with ``set_params`` after fitting take effect at the next ``fit``, as
    scikit-learn's do: ``temperature`` is part of the fitted model, and ``sample`` draws with
    the sampler of the last ``fit`` or ``partial_fit`` (``step_size``, ``chain_bounds``,
    ``langevin_steps``; :meth:`sample`'s keyword arguments change it for one call).
    ``partial_fit`` reads the training parameters anew at each call; ``features`` is read by
    each ``transform``. One fitted estimator may be used from several threads: calls that
    evaluate or train its model take turns on it.

    ``E`` alone need not be integrable on R^D (it has no quadratic term), so the density that
    ``score_samples`` evaluates adds a containment term outside a box ``support_``:
    ``p(w) proportional to exp(-(E(w) + ||w - clamp(w, support_)||^2) / tau)``. Inside the box
    it is the density the Langevin sampler targets, ``exp(-E(w) / tau)``; outside, it decays
    like the NN-EFH's quadratic term, so every row has a finite log-density. The box is the
    training data's range in working units ([-1, 1] for images, each feature's range for
    tabular data) widened by 5 % of its width on each side. ``score_samples`` returns
    ``-(E(w) + ||w - clamp(w)||^2) / tau - log Z + log|det dw/dx|``, with log Z estimated by
    annealed importance sampling from the box's uniform density with Gaussian tails (variance
    tau / 2), the same density without ``E``.

    At a low temperature (the default 1e-3) and in image dimensions that estimate rests on very
    few effective samples, and the library does not use it:
    ``score_samples`` raises :class:`skefh.estimators.LikelihoodError` instead of returning a
    number it cannot vouch for (see the likelihood page of the documentation).
    ``estimate_log_partition`` still runs AIS when called, and warns.

    References
    ----------
    E. Nijkamp, M. Hill, T. Han, S.-C. Zhu, Y. N. Wu, "On the Anatomy of MCMC-Based Maximum
    Likelihood Learning of Energy-Based Models", AAAI 2020.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skefh import EBM
    >>> X = load_digits().data[:64]
    >>> est = EBM(n_statistics=16, n_filters=4, langevin_steps=2, max_iter=2,
    ...           random_state=0).fit(X)
    >>> est.transform(X).shape
    (64, 16)
    """

    _feature_options = ("U",)

    #: What "auto" means for images and for tabular data (see ``_resolve_params``).
    _auto_defaults = {
        "n_statistics": (256, 64),
        "langevin_steps": (30, 20),
        "temperature": (1e-3, 1.0),
        "metropolis": (False, True),
        "learning_rate": (2e-4, 1e-3),
        "replay_buffer": (0, 10_000),
        "lr_schedule": ("cosine", "constant"),
        "max_iter": (default_image_updates(4500), 1000),
        "mode_jumps": (False, True),
        "gradient_penalty": (1e-2, 0.0),
    }

    _parameter_constraints: dict = {
        **BaseEnergyEstimator._parameter_constraints,
        **NeuralStatisticsMixin._parameter_constraints,
        "features": [StrOptions({"U"})],
        "gradient_penalty": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
    }

    def __init__(
        self, *, n_statistics="auto", n_filters=32, image_shape="auto", scaling="auto", statistics="auto",
        attention="last", downsample="stride", activation="leaky_relu", spectral_norm=False, langevin_steps="auto",
        step_size=0.05,
        temperature="auto", chain_bounds="auto", replay_buffer="auto", replay_reinit=0.05, sampler_precision="float32",
        metropolis="auto", compile=False, batch_size=64, learning_rate="auto", max_iter="auto", optimizer="adam",
        lr_schedule="auto",
        data_noise=0.03, max_grad_norm=1.0, energy_l2=0.0, gradient_penalty="auto", weight_decay=0.0,
        mode_jumps="auto", annealed_restarts=0, annealed_restart_every=5, annealed_restart_steps=300, features="U",
        device="auto",
        random_state=None, verbose=0, checkpoint_path=None, checkpoint_every=1000, on_divergence="raise",
        callbacks=None, log_partition="auto", ais_chains=64, ais_steps=1000,
    ):
        self.n_statistics = n_statistics
        self.n_filters = n_filters
        self.image_shape = image_shape
        self.scaling = scaling
        self.statistics = statistics
        self.attention = attention
        self.downsample = downsample
        self.activation = activation
        self.spectral_norm = spectral_norm
        self.langevin_steps = langevin_steps
        self.step_size = step_size
        self.temperature = temperature
        self.chain_bounds = chain_bounds
        self.replay_buffer = replay_buffer
        self.replay_reinit = replay_reinit
        self.sampler_precision = sampler_precision
        self.metropolis = metropolis
        self.compile = compile
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.optimizer = optimizer
        self.lr_schedule = lr_schedule
        self.data_noise = data_noise
        self.max_grad_norm = max_grad_norm
        self.energy_l2 = energy_l2
        self.gradient_penalty = gradient_penalty
        self.weight_decay = weight_decay
        self.mode_jumps = mode_jumps
        self.annealed_restarts = annealed_restarts
        self.annealed_restart_every = annealed_restart_every
        self.annealed_restart_steps = annealed_restart_steps
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

    def _build_module(self, input_shape, generator):
        statistics = self._build_statistics(input_shape, generator)
        return EBMEnergy(
            statistics, input_shape, self._trained_params["n_statistics"], generator=generator,
            temperature=self._trained_params["temperature"],
        )

    def _sampler_settings(self, p: dict) -> GibbsLangevinSettings:
        return GibbsLangevinSettings(
            n_gibbs=1,
            n_langevin=p["langevin_steps"],
            step_size=p["step_size"],
            precision=p["sampler_precision"],
            metropolis=p.get("metropolis", False),
            bounds=self._chain_box(p["chain_bounds"], p.get("metropolis", False)),
        )

    def _feature_tensor(self, x):
        return self.module_.statistics(x)

    def _n_transform_features(self) -> int:
        return self.module_.readout.shape[0]

    # -- the density: exp(-E(x) / tau) on a soft box ----------------------------------------------
    #: The support box is the data's working range widened by this fraction of its width.
    _support_margin = 0.05

    def _initialise(self, X):
        super()._initialise(X)
        if self.image_shape_ is not None:
            low = np.full(X.shape[1], -1.0)  # the range map sends the data range to [-1, 1]
            high = np.full(X.shape[1], 1.0)
        else:
            working = self.range_map_.to_working(X)
            low, high = working.min(0).astype(np.float64), working.max(0).astype(np.float64)
        margin = np.maximum(self._support_margin * (high - low), 1e-3)
        self.support_ = np.stack([low - margin, high + margin])
        self.module_.set_support(*self._support_tensors())

    def _support_tensors(self, dtype=torch.float32):
        shape = self._input_shape()
        return tuple(torch.as_tensor(bound, dtype=dtype, device=self.device_).reshape(shape) for bound in self.support_)

    def _annealing_path(self):
        box = self._density_box()
        if box is not None:  # the density restricted to the chains' box: a hard box
            return BoxPath(self.module_, *box, step_size=1e-3)
        # The containment ||w - clamp(w)||^2 / tau is a Gaussian tail of variance tau / 2.
        low, high = self._support_tensors()
        return BoxPath(self.module_, low, high, step_size=1e-3, tail_variance=0.5 * self.module_.temperature)

    def _extra_state(self) -> dict:
        return {"support": torch.from_numpy(self.support_)}

    def _load_extra_state(self, state: dict) -> None:
        self.support_ = state["support"].numpy()
        self.module_.set_support(*self._support_tensors())
