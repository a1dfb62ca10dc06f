"""NNEFH: the exponential-family harmonium with neural sufficient statistics."""

from __future__ import annotations

from numbers import Integral, Real

import torch
from sklearn.utils._param_validation import Interval, StrOptions

from ..nn import NNEFHEnergy, build_statistics_net
from ..samplers import GibbsLangevinSettings
from ._base import BaseEnergyEstimator

__all__ = ["NNEFH"]

_STATISTICS_CONSTRAINT = [StrOptions({"auto", "conv", "mlp"}), callable]


def statistics_kind(statistics, image_shape):
    """'auto' -> the conv net for images, the MLP for tabular data."""
    if statistics == "auto":
        return "conv" if image_shape is not None else "mlp"
    if statistics == "conv" and image_shape is None:
        raise ValueError("statistics='conv' needs image data: set image_shape=(C, H, W)")
    return statistics


class NNEFH(BaseEnergyEstimator):
    """Exponential-family harmonium with neural sufficient statistics (NN-EFH).

    The energy is ``E(z, x) = ||x - mu||^2 - U(x)^T W^T z - b^T z`` with Bernoulli latents
    ``z``: inference is exact, ``p(z | x) = Bern(sigmoid(W U(x) + b))``, and ``U`` is a deep
    network (a convolutional net with non-local attention for images, an MLP otherwise). It is
    trained by maximum likelihood with Gibbs-Langevin model samples (Algorithm 1 of the paper):
    each update draws ``x`` from noise, then runs ``gibbs_steps`` rounds of ``langevin_steps``
    Langevin steps on ``x`` with ``z`` fixed, each followed by ``z ~ p(z | x)``.

    Parameters
    ----------
    n_components : int, default=2048
        K, the number of Bernoulli latent units.
    n_statistics : int, default=1024
        N, the number of sufficient statistics U(x) (the network's last layer).
    n_filters : int, default=128
        Width of the first convolution of the image network (then 2x and 4x); unused by the MLP.
    image_shape : "auto", tuple of (C, H, W) or None, default="auto"
        How to view a row of X as an image. "auto" reads rows of H*H values (H >= 8) as
        1xHxH and rows of 3*H*H values as 3xHxH; any other length is tabular. None forces
        tabular data (the MLP). The resolved value is ``image_shape_``.
    statistics : {"auto", "conv", "mlp"} or callable, default="auto"
        The network U. "auto": "conv" for images, "mlp" otherwise. A callable is called as
        ``statistics(input_shape, n_statistics)`` and must return a ``torch.nn.Module``.
    attention : bool, default=True
        Non-local attention blocks in the image network.
    activation : {"leaky_relu", "swish"}, default="leaky_relu"
        Non-linearity of U (LeakyReLU with slope 0.05 in the reference).
    spectral_norm : bool, default=False
        Spectral normalisation of U's layers (a stabiliser).
    gibbs_steps : int, default=5
        M, Gibbs rounds per model sample.
    langevin_steps : int, default=60
        L, Langevin steps per Gibbs round.
    step_size : float, default=1.0
        Langevin step size epsilon.
    temperature : float, default=5e-5
        Langevin temperature T (noise standard deviation per step ``sqrt(2 epsilon T)``).
    energy_scale : "batch" or float, default="batch"
        Factor on the energy inside the Langevin drift. "batch" is ``1 / batch_size``: the
        paper's "normalize the final energy by the batch size", implemented as in the GRBM
        reference code; with the paper's unit step and no scaling the quadratic term alone makes
        every step a reflection. Applies to ``sample`` too, with the training batch size.
    batch_size : int, default=64
    learning_rate : float, default=1e-4
        Adam's learning rate (the paper does not state it; the first author's code uses 1e-4).
    max_iter : int, default=1000
        Number of parameter updates of ``fit`` (the paper trains 50,000).
    optimizer : {"adam", "sgd"}, default="adam"
    lr_schedule : {"constant", "cosine", "linear"}, default="constant"
    data_noise : float, default=0.03
        Standard deviation of the Gaussian noise added to each data batch.
    max_grad_norm : float or None, default=1.0
        Clip the parameter-gradient norm of each update.
    energy_l2 : float, default=0.0
        Weight of the penalty ``mean(E_data^2) + mean(E_samples^2)``.
    latent_statistics : {"sample", "mean"}, default="sample"
        Data-phase latent: a Bernoulli draw (the paper) or the posterior mean.
    features : {"U", "eta", "mean"}, default="U"
        What ``transform`` returns: the sufficient statistics U(x), the natural parameters
        eta(x) = W U(x) + b, or the posterior means sigmoid(eta(x)).
    device : "auto", str or torch.device, default="auto"
        "auto" uses CUDA when available, else the CPU; resolved in ``fit`` (``device_``).
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, minibatch order and sampling; an int makes ``fit`` and
        ``sample`` reproducible on the CPU.
    verbose : int, default=0
        1 shows a progress bar, 2 adds a log line every 100 updates.
    checkpoint_path : str or path-like, default=None
        Write a resumable checkpoint there every ``checkpoint_every`` updates and at the end.
        If the file exists when ``fit`` starts, the fit resumes from it.
    checkpoint_every : int, default=1000
    on_divergence : {"raise", "restore"}, default="raise"
        On non-finite values or exploding chains: raise :class:`skefh.training.DivergenceError`,
        or roll back to the last good state and halve the learning rate.
    callbacks : list of skefh.training.Callback, default=None
        Extra hooks called after every update.

    Attributes
    ----------
    module_ : skefh.nn.NNEFHEnergy
        The fitted torch module.
    image_shape_ : tuple or None
        The resolved image shape (None for tabular data).
    range_map_ : RangeMap
        The affine map from data units to the model's working units.
    device_ : torch.device
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Defined when X has string feature names.
    n_iter_ : int
        Updates performed.
    history_ : list of dict
        One record per update: ``energy_data``, ``energy_samples``, ``energy_gap``, ``loss``,
        ``grad_norm``, ``langevin_grad_norm``, ``chain_min``, ``chain_max``,
        ``posterior_data`` (mean posterior activation on the data batch), ``lr``, ``seconds``.

    See Also
    --------
    EBM : the same network as a plain energy-based model.
    GRBM : Gaussian-Bernoulli RBM, the linear-statistics baseline.

    Notes
    -----
    ``score_samples`` returns ``-F(x)`` plus the log-Jacobian of the scaling, with
    ``F(x) = ||x - mu||^2 - sum softplus(eta(x))`` the exact free energy: the log-density up to
    the model's log-partition function. Sampling is stochastic; on CUDA results are not
    bit-reproducible.

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

    _parameter_constraints: dict = {
        **BaseEnergyEstimator._parameter_constraints,
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "n_statistics": [Interval(Integral, 1, None, closed="left")],
        "n_filters": [Interval(Integral, 1, None, closed="left")],
        "statistics": _STATISTICS_CONSTRAINT,
        "attention": ["boolean"],
        "activation": [StrOptions({"leaky_relu", "swish"})],
        "spectral_norm": ["boolean"],
        "gibbs_steps": [Interval(Integral, 1, None, closed="left")],
        "latent_statistics": [StrOptions({"sample", "mean"})],
        "features": [StrOptions({"U", "eta", "mean"})],
    }
    _feature_options = ("U", "eta", "mean")

    def __init__(
        self,
        n_components=2048,
        *,
        n_statistics=1024,
        n_filters=128,
        image_shape="auto",
        statistics="auto",
        attention=True,
        activation="leaky_relu",
        spectral_norm=False,
        gibbs_steps=5,
        langevin_steps=60,
        step_size=1.0,
        temperature=5e-5,
        energy_scale="batch",
        batch_size=64,
        learning_rate=1e-4,
        max_iter=1000,
        optimizer="adam",
        lr_schedule="constant",
        data_noise=0.03,
        max_grad_norm=1.0,
        energy_l2=0.0,
        latent_statistics="sample",
        features="U",
        device="auto",
        random_state=None,
        verbose=0,
        checkpoint_path=None,
        checkpoint_every=1000,
        on_divergence="raise",
        callbacks=None,
    ):
        self.n_components = n_components
        self.n_statistics = n_statistics
        self.n_filters = n_filters
        self.image_shape = image_shape
        self.statistics = statistics
        self.attention = attention
        self.activation = activation
        self.spectral_norm = spectral_norm
        self.gibbs_steps = gibbs_steps
        self.langevin_steps = langevin_steps
        self.step_size = step_size
        self.temperature = temperature
        self.energy_scale = energy_scale
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.optimizer = optimizer
        self.lr_schedule = lr_schedule
        self.data_noise = data_noise
        self.max_grad_norm = max_grad_norm
        self.energy_l2 = energy_l2
        self.latent_statistics = latent_statistics
        self.features = features
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.checkpoint_path = checkpoint_path
        self.checkpoint_every = checkpoint_every
        self.on_divergence = on_divergence
        self.callbacks = callbacks

    def _build_statistics(self, input_shape, generator):
        kind = statistics_kind(self.statistics, self.image_shape_)
        # Layers draw their initial weights from torch's global RNG; fork it so that the
        # estimator's seed decides them without disturbing the caller's RNG stream.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch.randint(2**31 - 1, (1,), generator=generator)))
            return build_statistics_net(
                kind,
                input_shape,
                self.n_statistics,
                n_filters=self.n_filters,
                attention=self.attention,
                activation=self.activation,
                spectral_norm=self.spectral_norm,
            )

    def _build_module(self, input_shape, generator):
        statistics = self._build_statistics(input_shape, generator)
        return NNEFHEnergy(
            statistics, input_shape, self.n_statistics, self.n_components, generator=generator
        )

    def _sampler_settings(self) -> GibbsLangevinSettings:
        return GibbsLangevinSettings(
            n_gibbs=self.gibbs_steps,
            n_langevin=self.langevin_steps,
            step_size=self.step_size,
            temperature=self.temperature,
            energy_scale=self._resolved_energy_scale(),
        )

    def _trainer_options(self) -> dict:
        return {"latent_statistics": self.latent_statistics}

    def _feature_tensor(self, x):
        if self.features == "U":
            return self.module_.statistics(x)
        eta = self.module_.posterior_logits(x)
        return eta if self.features == "eta" else torch.sigmoid(eta)

    def _n_features_out(self) -> int:
        return self.n_statistics if self.features == "U" else self.n_components
