"""NNEFH: the exponential-family harmonium with neural sufficient statistics."""

from __future__ import annotations

from numbers import Integral, Real

import torch
from sklearn.utils._param_validation import Interval, StrOptions

from ..nn import NNEFHEnergy
from ..samplers import GibbsLangevinSettings
from ._base import BaseEnergyEstimator
from ._data_base import DataMomentsBaseMixin
from ._neural import NeuralStatisticsMixin
from ._resolve import ByImageSize, default_image_updates, default_table_updates

__all__ = ["NNEFH"]


class NNEFH(DataMomentsBaseMixin, NeuralStatisticsMixin, BaseEnergyEstimator):
    """Exponential-family harmonium with neural sufficient statistics (NN-EFH).

    The energy is ``E(z, x) = ||x - mu||^2 - U(x)^T W^T z - b^T z`` with Bernoulli latents
    ``z``: inference is exact, ``p(z | x) = Bern(sigmoid(W U(x) + b))``, and ``U`` is a deep
    network (a convolutional net with non-local attention for images, an MLP otherwise). It is
    trained by maximum likelihood with Gibbs-Langevin model samples (Algorithm 1 of the paper):
    each update runs ``gibbs_steps`` rounds of ``langevin_steps`` Langevin steps on ``x`` with
    ``z`` fixed, each followed by ``z ~ p(z | x)``.

    The defaults ("auto") depend on the kind of data. Images get a network sized for a CPU
    (32 filters, U of 256, 512 latent units, strided convolutions, one attention block), short
    chains restarted from noise at every update (2 rounds of 15 steps, no replay buffer) and a
    learning rate annealed to 0 over 4,500 updates (1,000 for images under 16x16 pixels), so
    that ``fit`` finishes on a laptop's CPU (training times on the generation page of the docs)
    and ``sample`` generates from noise. The paper's scale (128 filters, U of 1024, 2048
    units, 5 x 60 steps, 50,000 updates) is ``skefh.presets.make_estimator("nnefh", "paper")``,
    a GPU recipe. Tabular data get a
    small MLP at temperature 1 with persistent, Metropolis-adjusted chains (a replay buffer),
    so that ``sample`` draws from the density ``score`` measures.

    Parameters
    ----------
    n_components : int or "auto", default="auto"
        "auto": 512 for images, 128 for tabular data (``image_shape_`` None).
        K, the number of Bernoulli latent units.
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
        How tabular rows are mapped to the model's working units (images always map their
        observed pixel range to [-1, 1]). "whiten" (what "auto" means): centred and rotated onto
        the training rows' principal axes, each scaled to unit variance, so that correlated
        features do not leave the data on a thin ridge of the model's isotropic base density;
        "standardise": each feature to mean 0 and variance 1. ``score_samples`` includes the
        map's log-Jacobian either way, so scores are log-densities in the units of X.
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
    gibbs_steps : int or "auto", default="auto"
        "auto": 2 for images, 2 for tabular data (``image_shape_`` None).
        M, Gibbs rounds per model sample of training (``sample`` runs more by default: half as
        many again from noise for a model trained on chains from noise, twenty times as many
        for Metropolis-adjusted chains; see :meth:`sample`).
    langevin_steps : int or "auto", default="auto"
        "auto": 15 for images, 30 for tabular data (``image_shape_`` None).
        L, Langevin steps per Gibbs round.
    step_size : float or ByImageSize, default=0.05
        Langevin step size epsilon: each step is
        ``x <- x - epsilon dE/dx + sqrt(2 epsilon tau) xi`` on the per-sample energy, so the
        quadratic term alone contracts ``x - mu`` by ``1 - 2 epsilon`` per step whatever tau is.
        A :class:`~skefh.presets.ByImageSize` rule gives one value for images under 16x16
        pixels (and tables) and another for larger ones, resolved in ``fit`` (so does
        ``data_noise``'s; the ``density`` preset uses both).
    temperature : float or "auto", default="auto"
        "auto": 1e-3 for images, 2 for tabular data (``image_shape_`` None): at 2 the base below
        is N(mu, I), the spread of the whitened rows (``scaling``).
        tau: the model is ``p(x, z) proportional to exp(-E(z, x) / tau)``, ``E = ||x - mu||^2 -
        z^T eta(x)``, ``eta = W U + b``; ``fit`` learns it, ``sample`` draws from it (x-steps
        with noise ``sqrt(2 epsilon tau)``, latent draws ``z ~ Bern(sigmoid(eta / tau))``) and
        ``score`` measures it. tau also sets the width of the Gaussian base that the network
        reshapes (variance tau / 2 per working unit): far below the data's spread, the softplus
        terms must make up the difference and the latent units saturate (generation page).
    latent_temperature : float or None, default=None
        Temperature of the latent draws in training and sampling; None is ``temperature`` (one
        density). The paper's recipe draws z at 1 while its x-steps run at 3.2e-3 (its step 1
        and temperature 5e-5 on the energy divided by the batch size are
        ``step_size=1/64, temperature=3.2e-3`` here), a chain whose stationary law is neither
        density; the ``paper`` presets set ``latent_temperature=1.0`` to reproduce it.
    chain_bounds : "auto", (low, high) or None, default="auto"
        A box that the visible chains of training and ``sample`` are clipped to after every
        Langevin step (projected Langevin; the chains then target the density restricted to the
        box). "auto" is the data's observed range for images (pixels cannot leave it; image EBMs
        clip their chains in the same way) and no box for tabular data, whose densities have
        Gaussian tails; a pair of numbers is a box in the units of X (the same for every
        feature); None leaves the chains unbounded. Training that restarts chains from noise
        can run away without the box on images (see the generation page). With unadjusted
        steps, ``score``, ``score_samples`` and the log-partition function are those of the
        unrestricted density. With ``metropolis=True`` proposals that leave the box are
        reflected back in (the acceptance ratio accounts for it), the chains sample the density
        restricted to the box exactly, and ``score`` measures that density (rows
        outside the box score -inf); "auto" then widens an image's box by 5 % of its width on
        each side, so that held-out images a little beyond the training range keep a density.
    negative_init : {"noise", "data"} or float, default="noise"
        Where the latent chain of each training update starts: "noise" is the paper's Algorithm
        1 (z from the posterior of the initial noise), "data" starts it from the posterior of
        the data batch (as Algorithm 2 does at test time; x always starts from noise), and a
        float is the fraction of chains started from data.
    replay_buffer : int or "auto", default="auto"
        "auto": 0 for images, 10000 for tabular data (``image_shape_`` None).
        Size of a replay buffer of past chain states (persistent chains, as in Du & Mordatch
        2019). Each update restarts its visible chains from stored final states of earlier
        updates (all but ``replay_reinit`` of them, which restart from noise), so chains
        accumulate Langevin steps across updates and stay near the model; ``sample`` then starts
        from the buffer by default (``init="auto"``). 0 is the paper's recipe: every update
        restarts its chains from N(0, I), and the model learns to generate from noise. The
        buffer (``replay_buffer`` x input size floats) is part of the fitted state:
        checkpoints, pickles and ``partial_fit`` carry it.
    replay_reinit : float, default=0.05
        With a replay buffer, the probability that a chain restarts from fresh noise instead. It
        may be changed between ``partial_fit`` calls (``set_params``); the stored chains are
        kept.
    sampler_precision : {"float32", "bfloat16"}, default="float32"
        Precision of the Langevin energy gradients. "bfloat16" runs them under bfloat16
        autocast: faster on CPUs with native bfloat16 and on recent GPUs, with gradients close
        to float32's (``benchmarks/bench_sampler.py`` measures both).
        Training losses and the chain state stay float32.
    metropolis : bool or "auto", default="auto"
        "auto": False for images, True for tabular data (``image_shape_`` None).
        Metropolis-adjusted Langevin (MALA) x-steps in training and ``sample``: each step is a
        proposal accepted or rejected so that the chains leave the model's density invariant at
        any ``step_size`` (proposals that leave ``chain_bounds`` are reflected back in). Unadjusted steps
        (False) sample a density that is off by O(``step_size``) and overshoot where the energy
        is steep; adjusted ones cost one extra comparison per step and make ``sample`` draw from
        the density that ``score`` measures, given enough steps to mix.
    compile : bool or {"default", "reduce-overhead", "max-autotune"}, default=False
        Wrap U in ``torch.compile`` during ``fit`` and ``sample`` (a string selects the mode;
        "reduce-overhead" uses CUDA graphs). It pays off on GPUs, not on CPUs (performance page).
    batch_size : int, default=64
    learning_rate : float or "auto", default="auto"
        "auto": 2e-4 for images, 1e-3 for tabular data (``image_shape_`` None).
        Adam's learning rate (the paper does not state it; the first author's code uses 1e-4).
    max_iter : int or "auto", default="auto"
        "auto": 4500 for images of at least 16x16 pixels, 1000 for smaller images, and for
        tabular data 100 passes over the rows, at most 2000 (small tables overfit with more).
        Number of parameter updates of ``fit`` (the paper trains 50,000); 0
        initialises the model without training it (the untrained-network baseline).
    optimizer : {"adam", "sgd"}, default="adam"
    lr_schedule : {"constant", "cosine", "linear", "auto"}, default="auto"
        "auto": "cosine" (images and tabular data).
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
        because their sampler (chains restarted from noise every update, unbounded, the latent
        drawn at temperature 1) diverges early without it (see the stability page); the
        default samplers (chains kept in the pixel box for images, a replay buffer for tabular
        data) need no penalty.
    gradient_penalty : float, default=0.0
        gamma of the penalty ``gamma / 2 * mean ||dE/dx||^2`` on each (noisy) data batch, in
        working units, at the positive batch's latent draw: the R1 penalty of Mescheder et al.
        (2018), with the energy in the role of the discriminator; not in the paper. The EBM's
        image defaults use it against energies that steepen until data and sample energies
        separate; the NN-EFH's defaults train without it (not seen to diverge), and with it the
        data are no longer a stationary point of the likelihood alone.
    latent_l2 : float, default=0.0
        Weight of the penalty ``mean ||eta_data||^2 + mean ||eta_samples||^2`` on the posterior
        logits (squared norms averaged over the batch), which keeps the posterior from
        saturating.
    latent_sparsity : float, default=0.0
        Weight of the sparsity target of classic RBM training (Lee et al. 2008),
        ``sum_k (mean_batch p(z_k = 1 | x) - latent_target)^2`` on the data batch: it pulls each
        latent unit towards being on for a ``latent_target`` share of the data, so that no unit
        settles always on (a fixed linear read-out of U) or always off (a unit without gradient).
        ``history_`` records the shares of units that vary, are always on and are always off on
        each data batch.
    latent_target : float, default=0.2
        The mean activation each latent unit is pulled towards (with ``latent_sparsity > 0``).
    weight_decay : float, default=0.0
        Decoupled weight decay (AdamW; plain L2 for SGD) on all parameters.
    latent_statistics : {"sample", "mean"}, default="sample"
        Data-phase latent: a Bernoulli draw (the paper) or the posterior mean.
    coupling : {"auto", "paper", "centred", "bounded"} or ByImageSize, default="auto"
        How the latent units read U(x). "auto": "bounded" for images, "paper" for tabular
        data (a :class:`~skefh.presets.ByImageSize` rule names one by image size).
        "paper": ``eta = W U(x) + b``, the energy above.
        "centred": ``eta = W (U(x) - u_bar)`` with ``u_bar`` a running mean of U over the
        training data, and a visible read-out ``- a^T U(x)`` in the energy in place of the
        latent biases ``b``. In the paper's coupling every unit's sign is set by U's mean over
        inputs, and the units end on or off for every input; centred, each unit's logit is zero
        at the average data point, so the units split the data (see ``docs/models/nnefh.md``).
        "bounded": the centred coupling with each unit's posterior logit in nats,
        ``l_k = B tanh(g_W w_k . (U(x) - u_bar) / B)``, and the read-out ``g_a a^T U(x)``: a
        unit holds at most B nats of the energy and its posterior stays soft where the data do
        not push it, where the centred units end crisp.
    logit_bound : float, default=4.0
        B, the largest absolute logit of a latent unit with ``coupling="bounded"`` (ignored otherwise).
    latent_gain : float, default=100.0
        g_W with ``coupling="bounded"``: Adam moves each weight by about the learning rate per
        update, so the logits move ``latent_gain`` times as fast as the weights (ignored
        otherwise).
    readout_gain : float, default=256.0
        g_a with ``coupling="bounded"``: the read-out moves ``readout_gain`` times as fast as
        its weights, as the paper coupling's always-on units (about half of them) move together
        (ignored otherwise).
    whiten_statistics : bool or "auto", default="auto"
        "auto": True for images with the centred or the bounded coupling, False otherwise.
        With ``coupling="centred"`` or ``"bounded"``: the latent units read ``P (U(x) - u_bar)``,
        P whitening a running covariance of U over the training data (a buffer, like u_bar),
        so that every direction along which U varies over the data reaches the logits at the
        same scale (trained, U varies mostly along one direction; see ``docs/models/nnefh.md``).
        The read-out ``a^T U(x)`` keeps the raw U. Not available with the paper's coupling.
    mode_jumps : bool or "auto", default="auto"
        "auto": True for tabular data, False for images. Add to every training update one
        independence Metropolis-Hastings move per chain, from a Gaussian kernel density on up to
        512 training rows (:class:`skefh.samplers.KernelJump`): local Langevin moves never carry
        a persistent chain between modes far apart, so without it the chains keep the
        proportions they started with and the model's mode weights go uncorrected (measured on
        the likelihood page of the docs). Images have no use for it: their chains restart from
        noise at every update, and a kernel density in hundreds of dimensions would accept
        almost no jump.
    annealed_restarts : int or ByImageSize, default=0
        Every ``annealed_restart_every`` updates, run one forward AIS on the path ``score``
        uses (``ais_chains`` chains, ``annealed_restart_steps`` steps, from the current weights)
        and overwrite this many random chains of the replay buffer with draws from its final
        states, each drawn with probability proportional to its importance weight
        (:class:`skefh.training.AnnealedRestarts`). Persistent chains that start at the data
        never visit a mode the model puts away from it, so the contrastive gradient never
        removes such a mode, and AIS later finds its mass one chain at a time; annealing finds
        it, and the restarted chains show it to the gradient. Each run's log Z and effective
        sample size go into ``history_`` (``restart_log_z``, ``restart_ess``). 0 (the default)
        runs none. Needs a replay buffer (``replay_buffer`` > 0). Measured on the likelihood
        page of the docs; the ``density`` preset sets them on small images only.
    annealed_restart_every : int, default=5
        Updates between two annealed restarts.
    annealed_restart_steps : int, default=300
        Intermediate distributions of each annealed restart's AIS run.
    features : {"U", "eta", "mean"}, default="U"
        What ``transform`` returns: the sufficient statistics U(x), the natural parameters of
        the posterior at the model's temperature ``eta(x) / tau`` (``eta = W U(x) + b``,
        ``W (U(x) - u_bar)`` with ``coupling="centred"``, and the bounded logits ``l(x)`` with
        ``coupling="bounded"``), or the posterior means ``sigmoid(eta(x) / tau)``.
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
        fraction of a short CPU fit's time; see the likelihood page), stored in
        ``log_partition_``, with a :class:`skefh.estimators.LikelihoodWarning` if unreliable.
        "exact": enumeration (GRBM with few hidden units). None: no log Z, and ``score_samples``
        is the log-density up to a constant (unless :meth:`estimate_log_partition` is called).
    ais_chains : int, default=64
        Chains of the AIS estimate.
    ais_steps : int, default=1000
        Intermediate distributions of the AIS estimate.

    Attributes
    ----------
    log_partition_ : float or None
        Estimate of log Z in working units, set by ``fit`` with ``log_partition="ais"`` or
        ``"exact"`` and by :meth:`estimate_log_partition`; None otherwise (``score`` and
        ``score_samples`` never set it), and after ``partial_fit`` or ``from_checkpoint``.
    log_partition_std_ : float or None
        Its standard error (0 when exact).
    log_partition_ess_ : float or None
        Effective sample size of the AIS weights (out of ``ais_chains``).
    log_partition_upper_ : float or None
        The other end of the bracket on log Z: reverse AIS from training rows, set by
        ``estimate_log_partition(bracket=True)`` (log Z itself when exact); None otherwise.
    module_ : skefh.nn.NNEFHEnergy
        The fitted torch module.
    image_shape_ : tuple or None
        The resolved image shape (None for tabular data).
    range_map_ : RangeMap
        The affine map from data units to the model's working units.
    log_partition_lower_bound_ : float or None
        A lower bound on log Z (three standard errors below a Monte Carlo estimate of
        ``E_q[-F / tau - log q]``, q a Gaussian kernel density on up to 512 training rows),
        computed at the end of ``fit`` with ``log_partition="ais"``; an AIS estimate below it
        warns. None otherwise, and after ``partial_fit`` or ``from_checkpoint``.
    data_moments_ : ndarray of shape (2, `n_features_in_`) or None
        Per-feature mean and variance of the training data in working units: where the AIS
        estimate of log Z starts half of its chains (None when restored from a checkpoint that
        predates it).
    device_ : torch.device
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Defined when X has string feature names.
    n_iter_ : int
        Updates that produced the fitted weights (``max_iter`` after a complete fit; updates
        discarded by a divergence restore are not counted).
    history_ : list of dict
        One record per update: ``energy_data``, ``energy_samples``, ``energy_gap``, ``loss``,
        ``gradient_penalty`` (the penalty's term of the loss), ``grad_norm``,
        ``langevin_grad_norm``, ``chain_min``, ``chain_max``, ``posterior_data`` (mean posterior
        activation on the data batch), ``latent_varying``, ``latent_always_on``,
        ``latent_always_off`` (shares of latent units whose posterior varies, with a standard
        deviation of at least 0.1, across the data batch, or is on or off for every row of it),
        ``logit_dimension`` (participation ratio of the covariance of the posterior logits over the
        data batch: the number of directions along which the units split it, as
        :func:`skefh.metrics.latent_usage` reports it), ``acceptance`` (share of the training
        chains' Metropolis-adjusted Langevin proposals accepted; NaN for unadjusted chains),
        ``jump_acceptance`` (share of mode jumps accepted; NaN without them), ``lr``, ``seconds``;
        on the updates that ran an annealed restart also ``restart_log_z`` and ``restart_ess``.
        With ``on_divergence="restore"``, each restore adds a record with ``event="restored"``, the
        ``update`` that diverged, the ``reason``, the new ``lr_scale``, and the update it went back
        to (``restored_to``); the records of the discarded updates are dropped.

    See Also
    --------
    EBM : the same network as a plain energy-based model.
    GRBM : Gaussian-Bernoulli RBM, the linear-statistics baseline.

    Notes
    -----
    Parameters changed with ``set_params`` after fitting take effect at the next ``fit``, as
    scikit-learn's do: ``temperature`` is part of the fitted model, and ``sample`` draws with
    the sampler of the last ``fit`` or ``partial_fit`` (``step_size``, ``latent_temperature``,
    ``chain_bounds``, the step counts; :meth:`sample`'s keyword arguments change it for one
    call). ``partial_fit`` reads the training parameters anew at each call; ``features`` is read
    by each ``transform``. One fitted estimator may be used from several threads: calls that
    evaluate or train its model take turns on it.

    ``score_samples`` returns ``log p(x) = -F(w) / tau - log Z + log|det dw/dx|``: ``F(w) =
    ||w - mu||^2 - tau sum softplus(eta(w) / tau)`` is the exact free energy of the row ``w`` in
    working units at the model's temperature tau, ``log Z`` the annealed-importance-sampling estimate
    ``log_partition_`` (base: an equal mixture of N(mu, tau I/2) and a Gaussian fitted to the
    training data, annealed to exp(-F / tau)), and the last term
    the log-Jacobian of the data scaling, so that values are log-densities in the units of
    ``X``. The AIS estimate of log Z is biased low when its
    weights are uneven (check ``log_partition_ess_``); raise ``ais_steps`` to tighten it. At a
    low temperature the density is very peaked and AIS may not reach a reliable estimate
    (as for image models at the default temperature; see the likelihood page); ``score``
    then raises :class:`skefh.estimators.LikelihoodError` rather than return a number the
    library calls unreliable.
    Sampling is stochastic; on CUDA results are not bit-reproducible.

    References
    ----------
    A. Abdulsalam and J. G. Makin, "Exponential-Family Harmoniums with Neural Sufficient
    Statistics", AAAI 2025 (Eqs. 5-8, Algorithms 1 and 2).

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skefh import NNEFH
    >>> X = load_digits().data[:64]
    >>> est = NNEFH(n_components=16, n_statistics=16, n_filters=4, gibbs_steps=1,
    ...             langevin_steps=2, max_iter=2, random_state=0).fit(X)
    >>> est.image_shape_
    (1, 8, 8)
    >>> est.transform(X).shape
    (64, 16)
    >>> est.sample(3).shape
    (3, 64)
    """

    _feature_options = ("U", "eta", "mean")

    #: What "auto" means for images and for tabular data (see ``_resolve_params``).
    _auto_defaults = {
        "n_components": (512, 128),
        "n_statistics": (256, 64),
        "gibbs_steps": (2, 2),
        "langevin_steps": (15, 30),
        "temperature": (1e-3, 2.0),
        "metropolis": (False, True),
        "learning_rate": (2e-4, 1e-3),
        "replay_buffer": (0, 10_000),
        "lr_schedule": ("cosine", "cosine"),
        "max_iter": (default_image_updates(4500), default_table_updates(2000, 100)),
        "mode_jumps": (False, True),
        "coupling": ("bounded", "paper"),
    }

    def _resolve_params(self) -> dict:
        params = super()._resolve_params()
        if isinstance(params["whiten_statistics"], str):  # "auto": whiten where it was measured to help
            params["whiten_statistics"] = self.image_shape_ is not None and params["coupling"] != "paper"
        return params

    _parameter_constraints: dict = {
        **BaseEnergyEstimator._parameter_constraints,
        **NeuralStatisticsMixin._parameter_constraints,
        "n_components": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "gibbs_steps": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "latent_temperature": [Interval(Real, 0, None, closed="neither"), None],
        "negative_init": [StrOptions({"noise", "data"}), Interval(Real, 0, 1, closed="both")],
        "latent_l2": [Interval(Real, 0, None, closed="left")],
        "latent_sparsity": [Interval(Real, 0, None, closed="left")],
        "latent_target": [Interval(Real, 0, 1, closed="neither")],
        "latent_statistics": [StrOptions({"sample", "mean"})],
        "coupling": [StrOptions({*NNEFHEnergy.COUPLINGS, "auto"}), ByImageSize],
        "logit_bound": [Interval(Real, 0, None, closed="neither")],
        "latent_gain": [Interval(Real, 0, None, closed="neither")],
        "readout_gain": [Interval(Real, 0, None, closed="neither")],
        "whiten_statistics": ["boolean", StrOptions({"auto"})],
        "features": [StrOptions({"U", "eta", "mean"})],
    }

    def __init__(
        self, n_components="auto", *, n_statistics="auto", n_filters=32, image_shape="auto", scaling="auto",
        statistics="auto", attention="last", downsample="stride", activation="leaky_relu", spectral_norm=False,
        gibbs_steps="auto",
        langevin_steps="auto", step_size=0.05, temperature="auto", latent_temperature=None, chain_bounds="auto",
        negative_init="noise", replay_buffer="auto", replay_reinit=0.05, sampler_precision="float32", metropolis="auto",
        compile=False, batch_size=64, learning_rate="auto", max_iter="auto", optimizer="adam", lr_schedule="auto",
        data_noise=0.03,
        max_grad_norm=1.0, energy_l2=0.0, gradient_penalty=0.0, latent_l2=0.0, latent_sparsity=0.0, latent_target=0.2,
        weight_decay=0.0, latent_statistics="sample", coupling="auto", logit_bound=4.0, latent_gain=100.0,
        readout_gain=256.0, whiten_statistics="auto", mode_jumps="auto", annealed_restarts=0,
        annealed_restart_every=5, annealed_restart_steps=300, features="U",
        device="auto", random_state=None, verbose=0, checkpoint_path=None, checkpoint_every=1000,
        on_divergence="raise", callbacks=None, log_partition="auto", ais_chains=64, ais_steps=1000,
    ):
        self.n_components = n_components
        self.n_statistics = n_statistics
        self.n_filters = n_filters
        self.image_shape = image_shape
        self.scaling = scaling
        self.statistics = statistics
        self.attention = attention
        self.downsample = downsample
        self.activation = activation
        self.spectral_norm = spectral_norm
        self.gibbs_steps = gibbs_steps
        self.langevin_steps = langevin_steps
        self.step_size = step_size
        self.temperature = temperature
        self.latent_temperature = latent_temperature
        self.chain_bounds = chain_bounds
        self.negative_init = negative_init
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
        self.latent_l2 = latent_l2
        self.latent_sparsity = latent_sparsity
        self.latent_target = latent_target
        self.weight_decay = weight_decay
        self.latent_statistics = latent_statistics
        self.coupling = coupling
        self.logit_bound = logit_bound
        self.latent_gain = latent_gain
        self.readout_gain = readout_gain
        self.whiten_statistics = whiten_statistics
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
        if self._trained_params.get("whiten_statistics", False) and self._trained_params["coupling"] == "paper":
            raise ValueError("whiten_statistics=True needs coupling='centred' or 'bounded': the paper's "
                             "coupling keeps no running statistics of U to whiten them by")
        statistics = self._build_statistics(input_shape, generator)
        return NNEFHEnergy(
            statistics, input_shape, self._trained_params["n_statistics"], self._trained_params["n_components"],
            generator=generator, temperature=self._trained_params["temperature"],
            coupling=self._trained_params["coupling"], logit_bound=self._trained_params["logit_bound"],
            latent_gain=self._trained_params["latent_gain"], readout_gain=self._trained_params["readout_gain"],
            whiten=self._trained_params.get("whiten_statistics", False),
        )

    def _sampler_settings(self, p: dict) -> GibbsLangevinSettings:
        return GibbsLangevinSettings(
            n_gibbs=p["gibbs_steps"],
            n_langevin=p["langevin_steps"],
            step_size=p["step_size"],
            latent_temperature=p["latent_temperature"],
            precision=p["sampler_precision"],
            metropolis=p.get("metropolis", False),
            bounds=self._chain_box(p["chain_bounds"], p.get("metropolis", False)),
        )

    def _negative_data_fraction(self) -> float:
        if self.negative_init == "noise":
            return 0.0
        if self.negative_init == "data":
            return 1.0
        return float(self.negative_init)

    def _trainer_options(self) -> dict:
        return {
            **super()._trainer_options(),
            "latent_statistics": self.latent_statistics,
            "latent_l2": self.latent_l2,
            "latent_sparsity": self.latent_sparsity,
            "latent_target": self.latent_target,
            "latent_temperature": self.latent_temperature,
        }

    def _feature_tensor(self, x):
        if self.features == "U":
            return self.module_.statistics(x)
        eta = self.module_.natural_parameters(x)
        return eta if self.features == "eta" else torch.sigmoid(eta)

    def _n_transform_features(self) -> int:
        return self.module_.weight.shape[1 if self.features == "U" else 0]
