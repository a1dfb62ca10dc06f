"""One definition per estimator parameter: default, constraint and documentation.

scikit-learn reads an estimator's parameters from the signature of its ``__init__``, validates
them against ``_parameter_constraints`` and documents them in the class docstring. Written by
hand in each of NNEFH, EBM and GRBM, those three lists repeat one another for every parameter
the models share. Here each parameter is defined once (:data:`PARAMETERS`); each estimator's
:class:`ParameterSpec` names its parameters in signature order and overrides only what differs
for it (GRBM's defaults come from its reference code, an EBM samples without Gibbs rounds).
:func:`with_parameters` then gives the class its ``__init__``, its constraints and the
Parameters section of its docstring from the spec, so changing a default is a one-line edit.

The texts of :data:`PARAMETERS` are the NN-EFH's; an override replaces a text where the meaning
differs for another model, or appends a note (``more``) that holds for that model only.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import re
import textwrap
from numbers import Integral, Real
from typing import Any

import torch
from sklearn.utils._param_validation import Interval, StrOptions

__all__ = [
    "EBM_FEATURES",
    "EBM_PARAMETERS",
    "GRBM_FEATURES",
    "GRBM_PARAMETERS",
    "NNEFH_FEATURES",
    "NNEFH_PARAMETERS",
    "PARAMETERS",
    "Param",
    "ParameterSpec",
    "with_parameters",
]


@dataclasses.dataclass(frozen=True)
class Param:
    """One parameter: its numpydoc type, default, scikit-learn constraint and description.

    Parameters
    ----------
    type : str
        The numpydoc type, without the default (``default=...`` is written from ``default``).
    default : object
    constraint : list
        The ``_parameter_constraints`` entry (``sklearn.utils._param_validation``).
    doc : str, default=""
        The description; whitespace is normalised and the text re-wrapped when rendered.
    """

    type: str
    default: Any
    constraint: list
    doc: str = ""

    def but(self, *, more: str = "", **changes) -> Param:
        """A copy with ``changes`` applied and the note ``more`` appended to the description."""
        new = dataclasses.replace(self, **changes)
        return dataclasses.replace(new, doc=f"{new.doc} {more}") if more else new

    def numpydoc(self, name: str, indent: str) -> str:
        """The entry ``name : type, default=...`` and its wrapped description."""
        head = f"{indent}{name} : {self.type}, default={_show(self.default)}"
        text = " ".join(self.doc.split())
        if not text:
            return head
        # Inline literals stay on one line: their spaces are held by a placeholder while wrapping.
        text = _LITERAL.sub(lambda m: m.group(0).replace(" ", "\0"), text)
        body = textwrap.fill(text, width=96, initial_indent=indent + "    ", subsequent_indent=indent + "    ",
                             break_long_words=False, break_on_hyphens=False)
        return f"{head}\n{body.replace(chr(0), ' ')}"


_LITERAL = re.compile(r"``.+?``")


def _show(value) -> str:
    """A default as the docstrings write it: ``"auto"``, ``1e-3``, ``0.05``, ``None``."""
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, float) and 0 < abs(value) < 0.01:
        mantissa, exponent = f"{value:.15e}".split("e")
        return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
    return repr(value)


# -- shorthands for the common constraint shapes ---------------------------------------------------
def _count(default: int, low: int, doc: str = "") -> Param:
    return Param("int", default, [Interval(Integral, low, None, closed="left")], doc)


def _positive(default: float, doc: str = "") -> Param:
    return Param("float", default, [Interval(Real, 0, None, closed="neither")], doc)


def _nonnegative(default: float, doc: str = "") -> Param:
    return Param("float", default, [Interval(Real, 0, None, closed="left")], doc)


def _fraction(default: float, doc: str = "") -> Param:
    return Param("float", default, [Interval(Real, 0, 1, closed="both")], doc)


def _options(*values: str) -> str:
    return "{" + ", ".join(f'"{v}"' for v in values) + "}"


def _one_of(values: tuple, default: str, doc: str = "") -> Param:
    return Param(_options(*values), default, [StrOptions(set(values))], doc)


def _features(values: tuple, doc: str) -> dict:
    """The fields of a ``features`` parameter; its first value is the default."""
    return dict(type=_options(*values), default=values[0], constraint=[StrOptions(set(values))], doc=doc)


#: What ``transform`` may return, per model; the first is the default. The EBM has one choice
#: only, and keeps the parameter so that ``features``, ``transform`` and
#: ``get_feature_names_out`` ("ebm_u0", ...) read the same on all three estimators.
NNEFH_FEATURES = ("U", "eta", "mean")
EBM_FEATURES = ("U",)
GRBM_FEATURES = ("mean", "eta")

_NNEFH_FEATURES_DOC = """What ``transform`` returns: the sufficient statistics U(x), the natural parameters of the
    posterior ``eta(x) / tau = (W U(x) + b) / tau``, or the posterior means ``sigmoid(eta(x) / tau)``."""

#: Every estimator parameter, defined once (texts and defaults: the NN-EFH's).
PARAMETERS: dict[str, Param] = {
    # -- the sufficient-statistics network U (NNEFH, EBM) -------------------------------------
    "n_components": _count(2048, 1, "K, the number of Bernoulli latent units."),
    "n_statistics": _count(1024, 1, "N, the number of sufficient statistics U(x) (the network's last layer)."),
    "n_filters": _count(128, 1, """Width of the first convolution of the image network (then 2x and 4x); unused
        by the MLP."""),
    "image_shape": Param('"auto", tuple of (C, H, W) or None', "auto", [StrOptions({"auto"}), tuple, list, None], """
        How to view a row of X as an image. "auto" reads rows of H*H values (H >= 8) as 1xHxH and rows of
        3*H*H values as 3xHxH, for plain arrays only: data with column names (a DataFrame;
        ``feature_names_in_``) are tabular whatever their width, and so is any other length. None forces
        tabular data (the MLP). The resolved value is ``image_shape_``; with ``verbose``, ``fit`` prints one
        line saying what "auto" resolved to and why."""),
    "statistics": Param('{"auto", "conv", "mlp"} or callable', "auto",
                        [StrOptions({"auto", "conv", "mlp"}), callable], """
        The network U. "auto": "conv" for images, "mlp" otherwise. A callable is called as
        ``statistics(input_shape, n_statistics)`` and must return a ``torch.nn.Module``."""),
    "attention": Param('bool or "last"', True, ["boolean", StrOptions({"last"})], """
        Non-local attention blocks in the image network: after its first two stages, after the second
        only ("last"), or none."""),
    "downsample": _one_of(("maxpool", "avgpool", "stride"), "maxpool", """
        How the image network halves the resolution at each stage (see :class:`skefh.nn.ConvStatistics`)."""),
    "activation": _one_of(("leaky_relu", "swish"), "leaky_relu",
                          "Non-linearity of U (LeakyReLU with slope 0.05 in the reference)."),
    "spectral_norm": Param("bool", False, ["boolean"], """
        Spectral normalisation of U's convolutions and dense layers (a stabiliser; see
        :func:`skefh.nn.build_statistics_net` for what it leaves out)."""),
    # -- the sampler ----------------------------------------------------------------------------
    "gibbs_steps": _count(5, 1, "M, Gibbs rounds per model sample."),
    "langevin_steps": _count(60, 0, "L, Langevin steps per Gibbs round."),
    "step_size": _positive(0.05, """
        Langevin step size epsilon: each step is ``x <- x - epsilon dE/dx + sqrt(2 epsilon tau) xi`` on the
        per-sample energy, so the quadratic term alone contracts ``x - mu`` by ``1 - 2 epsilon`` per step
        whatever tau is."""),
    "temperature": _positive(1e-3, """
        tau: the model is ``p(x, z) proportional to exp(-E(z, x) / tau)``, and the sampler targets exactly
        that density in both of its halves (x-steps with noise ``sqrt(2 epsilon tau)``, latent draws
        ``z ~ Bern(sigmoid(eta / tau))``). ``score``, ``score_samples``, the posterior (``features="mean"``)
        and the log-partition function are those of the same density. It does not depend on
        ``batch_size``."""),
    "latent_temperature": Param("float or None", None, [Interval(Real, 0, None, closed="neither"), None], """
        Temperature of the latent draws in training and sampling; None is ``temperature`` (one density).
        The paper's recipe draws z at 1 while its x-steps run at 3.2e-3 (its step 1 and temperature 5e-5 on
        the energy divided by the batch size are ``step_size=1/64, temperature=3.2e-3`` here), a chain
        whose stationary law is neither density; the ``paper`` presets set ``latent_temperature=1.0`` to
        reproduce it."""),
    "chain_bounds": Param('"auto", (low, high) or None', "auto", [StrOptions({"auto"}), tuple, list, None], """
        A box that the visible chains of training and ``sample`` are clipped to after every Langevin step
        (projected Langevin; the chains then target the density restricted to the box). "auto" is the
        data's observed range for images (pixels cannot leave it; image EBMs clip their chains in the same
        way) and no box for tabular data, whose densities have Gaussian tails; a pair of numbers is a box
        in the units of X (the same for every feature); None leaves the chains unbounded. On
        Fashion-MNIST at the ``cpu`` preset, training that restarts many chains from noise ran away
        without the box (``replay_reinit=0.3``: chains beyond ``|x| = 100`` at update 1,151) and stayed
        finite with it (``replay_reinit=0.5``, 2,000 updates; generation page). ``score``,
        ``score_samples`` and the log-partition function are those of the unrestricted density."""),
    "negative_init": Param('{"noise", "data"} or float', "noise",
                           [StrOptions({"noise", "data"}), Interval(Real, 0, 1, closed="both")], """
        Where the latent chain of each training update starts: "noise" is the paper's Algorithm 1 (z from
        the posterior of the initial noise), "data" starts it from the posterior of the data batch (as
        Algorithm 2 does at test time; x always starts from noise), and a float is the fraction of chains
        started from data."""),
    "replay_buffer": _count(10_000, 0, """
        Size of a replay buffer of past chain states (persistent chains, as in Du & Mordatch 2019). Each
        update restarts its visible chains from stored final states of earlier updates (all but
        ``replay_reinit`` of them, which restart from noise), so chains accumulate Langevin steps across
        updates and stay near the model; ``sample`` then starts from the buffer by default
        (``init="auto"``). 0 is the paper's recipe: every update restarts its chains from N(0, I). On
        Fashion-MNIST at the ``cpu`` preset the buffer is what kept training finite (without it, runs at
        learning rates 1e-4 and 2e-4 diverged after 1,296 and 742 updates) and what made the samples
        recognisable (see the generation page). The buffer (``replay_buffer`` x input size floats, 31 MB
        for Fashion-MNIST) is part of the fitted state: checkpoints, pickles and ``partial_fit`` carry
        it."""),
    "replay_reinit": _fraction(0.05, """
        With a replay buffer, the probability that a chain restarts from fresh noise instead. It may be
        changed between ``partial_fit`` calls (``set_params``); the stored chains are kept. On digits,
        0.3-0.6 gave better samples than 0.05 both from the buffer and from noise; on Fashion-MNIST 0.3
        made training diverge, as restarting every chain does (generation page)."""),
    "sampler_precision": _one_of(("float32", "bfloat16"), "float32", """
        Precision of the Langevin energy gradients. "bfloat16" runs them under bfloat16 autocast: about
        2.8x faster on CPUs with native bfloat16 (and on recent GPUs), with gradients within about 0.2 % of
        float32 (measured in ``benchmarks/bench_sampler.py``). Training losses and the chain state stay
        float32."""),
    "compile": Param('bool or {"default", "reduce-overhead", "max-autotune"}', False,
                     ["boolean", StrOptions({"default", "reduce-overhead", "max-autotune"})], """
        Wrap U in ``torch.compile`` during ``fit`` and ``sample`` (a string selects the mode;
        "reduce-overhead" uses CUDA graphs). It pays off on GPUs; on CPUs it measured slower."""),
    # -- the GRBM's sampler (Liao et al.'s reference code) ----------------------------------------
    "energy_scale": Param('"batch" or float', "batch",
                          [StrOptions({"batch"}), Interval(Real, 0, None, closed="neither")], """
        Factor s on the energy in the Langevin drift, ``v <- v - eps s dE/dv + sqrt(2 eps) xi``. "batch" is
        ``1 / batch_size``, as in the reference code, whose energies are divided by the batch size: its
        x-steps then target exp(-E / B), a density B times hotter than the model's, while the latent draws
        stay at the model's p(h | v). 1.0 makes both halves target the model, exp(-E)."""),
    "step_schedule": _one_of(("cosine", "constant"), "cosine"),
    "sampler": _one_of(("gibbs_langevin", "gibbs"), "gibbs_langevin",
                       '"gibbs" draws v ~ p(v | h) exactly instead of Langevin steps.'),
    "negative_samples": _one_of(("all", "last"), "all", """
        Average the negative statistics over every Gibbs round (reference) or use the last."""),
    "sample_mean": Param("bool", True, ["boolean"], """
        ``sample`` returns the conditional mean ``W h + mu`` of the final latent state, as the reference
        does for its figures, instead of the last visible state."""),
    "init_var": _positive(1.0, "Initial variance sigma^2."),
    # -- optimisation ---------------------------------------------------------------------------
    "batch_size": _count(64, 1),
    "learning_rate": _positive(1e-4, """
        Adam's learning rate (the paper does not state it; the first author's code uses 1e-4)."""),
    "max_iter": _count(1000, 0, """
        Number of parameter updates of ``fit`` (the paper trains 50,000); 0 initialises the model without
        training it (the untrained-network baseline)."""),
    "optimizer": _one_of(("adam", "sgd"), "adam"),
    "lr_schedule": _one_of(("constant", "cosine", "linear"), "constant"),
    "data_noise": _nonnegative(0.03, "Standard deviation of the Gaussian noise added to each data batch."),
    "max_grad_norm": Param("float or None", 1.0, [Interval(Real, 0, None, closed="neither"), None],
                           "Clip the parameter-gradient norm of each update."),
    "energy_l2": _nonnegative(0.0, """
        Weight of the penalty ``mean(E_data^2) + mean(E_samples^2)`` (Du & Mordatch 2019); not in the paper.
        It pins the mean data and sample energies near ``-1 / (2 energy_l2)`` and ``+1 / (2 energy_l2)``, a
        permanent gap between samples and data: it keeps training finite but stops the samples from
        matching the data. The ``paper`` presets set 0.01, because their sampler (chains restarted from
        noise every update) diverges without it; the default sampler with a replay buffer needs no
        penalty."""),
    "latent_l2": _nonnegative(0.0, """
        Weight of the penalty ``mean ||eta_data||^2 + mean ||eta_samples||^2`` on the posterior logits
        (squared norms averaged over the batch), which keeps the posterior from saturating."""),
    "weight_decay": _nonnegative(0.0, "Decoupled weight decay (AdamW; plain L2 for SGD) on all parameters."),
    "latent_statistics": _one_of(("sample", "mean"), "sample", """
        Data-phase latent: a Bernoulli draw (the paper) or the posterior mean."""),
    "features": Param(**_features(NNEFH_FEATURES, _NNEFH_FEATURES_DOC)),
    # -- running ----------------------------------------------------------------------------------
    "device": Param('"auto", str or torch.device', "auto", [str, torch.device], """
        "auto" uses CUDA when available, else the CPU; resolved in ``fit`` (``device_``)."""),
    "random_state": Param("int, RandomState instance or None", None, ["random_state"], """
        Seeds initialisation, minibatch order and sampling; an int makes ``fit`` and ``sample``
        reproducible on the CPU."""),
    "verbose": Param("int", 0, ["verbose"], "1 shows a progress bar, 2 adds a log line every 100 updates."),
    "checkpoint_path": Param("str or path-like", None, [str, os.PathLike, None], """
        Write a resumable checkpoint there every ``checkpoint_every`` updates and at the end. If the file
        exists when ``fit`` starts, the fit resumes from it."""),
    "checkpoint_every": _count(1000, 1),
    "on_divergence": _one_of(("raise", "restore"), "raise", """
        On non-finite values or exploding chains: raise :class:`skefh.training.DivergenceError`, or roll
        back to the last good state (kept every 100 updates), halve the learning rate and run the
        discarded updates again (at most three times, then raise), so that a fit that returns has
        performed ``max_iter`` updates."""),
    "callbacks": Param("list of skefh.training.Callback", None, [list, tuple, None],
                       "Extra hooks called after every update."),
    "log_partition": Param('{"auto", "ais", "exact"} or None', "auto",
                           [StrOptions({"auto", "ais", "exact"}), None], """
        The log-partition function log Z that normalises ``score_samples``. "auto": ``fit`` computes it
        only where it is exact and cheap (a GRBM with few hidden units); otherwise ``score_samples``
        estimates it by annealed importance sampling on first use, keeps it privately, and raises
        :class:`skefh.estimators.LikelihoodError` if that estimate is unreliable. "ais": ``fit`` ends with
        an AIS estimate and a lower bound on log Z (it costs 12-28 % of a short CPU fit; see the
        likelihood page), stored in ``log_partition_``, with a
        :class:`skefh.estimators.LikelihoodWarning` if unreliable. "exact": enumeration (GRBM with few
        hidden units). None: no log Z, and ``score_samples`` is the log-density up to a constant (unless
        :meth:`estimate_log_partition` is called)."""),
    "ais_chains": _count(64, 1, "Chains of the AIS estimate."),
    "ais_steps": _count(1000, 1, "Intermediate distributions of the AIS estimate."),
}


class ParameterSpec:
    """The parameters of one estimator, in signature order.

    Parameters
    ----------
    names : sequence of str
        Parameter names from :data:`PARAMETERS`, in signature order; ``"*"`` marks where the
        keyword-only parameters start.
    **overrides : dict
        Per name, the fields of :class:`Param` that differ for this estimator (and ``more``, a
        note appended to the description).
    """

    def __init__(self, names, **overrides):
        unknown = set(overrides) - set(names)
        if unknown:
            raise ValueError(f"overrides for parameters not in the signature: {sorted(unknown)}")
        names = list(names)
        self.n_positional = names.index("*") if "*" in names else len(names)
        self.params = {name: PARAMETERS[name].but(**overrides.get(name, {})) for name in names if name != "*"}

    def constraints(self) -> dict:
        """The ``_parameter_constraints`` of the estimator."""
        return {name: list(p.constraint) for name, p in self.params.items()}

    def signature(self) -> inspect.Signature:
        """``__init__(self, <positional>, *, <keyword-only>)`` with the defaults."""
        kinds = [inspect.Parameter.POSITIONAL_OR_KEYWORD] * self.n_positional
        kinds += [inspect.Parameter.KEYWORD_ONLY] * (len(self.params) - self.n_positional)
        return inspect.Signature(
            [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
            + [inspect.Parameter(name, kind, default=p.default) for (name, p), kind in zip(self.params.items(), kinds)]
        )

    def numpydoc(self, indent: str = "") -> str:
        """The entries of a numpydoc Parameters section."""
        return "\n".join(p.numpydoc(name, indent) for name, p in self.params.items())

    def make_init(self, qualname: str, module: str):
        """An ``__init__`` that stores every argument unchanged (scikit-learn's rule) and whose
        ``inspect.signature`` is :meth:`signature`, where scikit-learn reads the parameter names."""
        signature = self.signature()

        def __init__(self, *args, **kwargs):
            bound = signature.bind(self, *args, **kwargs)
            bound.apply_defaults()
            for name, value in bound.arguments.items():
                if name != "self":
                    setattr(self, name, value)

        __init__.__signature__ = signature
        __init__.__qualname__ = qualname
        __init__.__module__ = module
        return __init__


#: The line of a class docstring that :func:`with_parameters` replaces by the entries.
_PLACEHOLDER = re.compile(r"^([ \t]*)\{parameters\}[ \t]*$", re.MULTILINE)


def with_parameters(spec: ParameterSpec):
    """Class decorator: ``__init__``, ``_parameter_constraints`` and the docstring's
    Parameters entries (at the line ``{parameters}``) from ``spec``.

    It also checks that ``spec`` has every parameter the base class reads
    (``_base_parameters``), so that lower layers never reach for a name a model lacks.
    """

    def decorate(cls):
        missing = [name for name in getattr(cls, "_base_parameters", ()) if name not in spec.params]
        if missing:
            raise TypeError(f"{cls.__name__} lacks the parameters its base class reads: {missing}")
        if not _PLACEHOLDER.search(cls.__doc__ or ""):
            raise TypeError(f"the docstring of {cls.__name__} has no {{parameters}} line")
        cls.__init__ = spec.make_init(f"{cls.__qualname__}.__init__", cls.__module__)
        cls._parameter_constraints = spec.constraints()
        cls.__doc__ = _PLACEHOLDER.sub(lambda m: spec.numpydoc(m.group(1)), cls.__doc__, count=1)
        return cls

    return decorate


# -- the three estimators ---------------------------------------------------------------------------
# Groups of parameters that appear together, in this order, in more than one signature.
_NETWORK = ("n_statistics", "n_filters", "image_shape", "statistics", "attention", "downsample", "activation",
            "spectral_norm")
_CHAINS = ("replay_buffer", "replay_reinit", "sampler_precision", "compile")
_OPTIMISATION = ("batch_size", "learning_rate", "max_iter", "optimizer", "lr_schedule", "data_noise",
                 "max_grad_norm", "energy_l2")
_RUN = ("device", "random_state", "verbose", "checkpoint_path", "checkpoint_every", "on_divergence", "callbacks",
        "log_partition", "ais_chains", "ais_steps")

NNEFH_PARAMETERS = ParameterSpec(
    ("n_components", "*", *_NETWORK, "gibbs_steps", "langevin_steps", "step_size", "temperature",
     "latent_temperature", "chain_bounds", "negative_init", *_CHAINS, *_OPTIMISATION, "latent_l2", "weight_decay",
     "latent_statistics", "features", *_RUN),
    energy_l2=dict(more="""On Fashion-MNIST with the paper's sampler on the CPU-sized network, training without it
        diverged within 161 updates (see the stability page)."""),
)

EBM_PARAMETERS = ParameterSpec(
    ("*", *_NETWORK, "langevin_steps", "step_size", "temperature", "chain_bounds", *_CHAINS, *_OPTIMISATION,
     "weight_decay", "features", *_RUN),
    langevin_steps=dict(default=100, doc="""Steps of short-run Langevin per update. The paper does not state it;
        100 is the first author's first EBM configuration and Nijkamp et al.'s short-run setting."""),
    # An EBM has no quadratic term: the step is the same, its contraction is not.
    step_size=dict(doc="""Langevin step size epsilon: each step is ``x <- x - epsilon dE/dx + sqrt(2 epsilon tau)
        xi`` on the per-sample energy."""),
    temperature=dict(doc="""tau: the model is ``exp(-E(x) / tau)`` and the Langevin chains target it. The paper's
        EBM steps (step 1 on the summed energy, temperature 5e-5, as in the first author's code) are
        ``step_size=1, temperature=5e-5``."""),
    replay_buffer=dict(more="""On Fashion-MNIST over 10,000 updates, with ``replay_buffer=10000`` the features'
        linear probe read 84.77 % at 10,000 against 84.53 % at 2,000 (without: 84.45 % against 84.88 %, a
        decline that a paired test does not find significant, p = 0.10; see the stability page of the
        docs)."""),
    energy_l2=dict(more="""On Fashion-MNIST with the CPU preset, training with the paper's sampler without it
        diverged at update 244."""),
    features=_features(EBM_FEATURES, "``transform`` returns the penultimate layer U(x)."),
)

GRBM_PARAMETERS = ParameterSpec(
    ("n_components", "*", "image_shape", "gibbs_steps", "langevin_steps", "step_size", "energy_scale",
     "step_schedule", "sampler", "negative_samples", "sample_mean", "init_var", *_OPTIMISATION, "weight_decay",
     "features", *_RUN),
    n_components=dict(default=4096, doc="""Number of hidden units (the reference's MNIST configuration; 10,000
        for Fashion-MNIST)."""),
    image_shape=dict(doc="""Only decides the data scaling (images: observed range to [-1, 1]; tabular:
        standardisation); the GRBM always sees flattened rows. "auto" as in :class:`NNEFH` (named columns
        are tabular)."""),
    gibbs_steps=dict(default=100, doc="Gibbs rounds per update (the reference's ``CD_step``)."),
    langevin_steps=dict(default=10),
    step_size=dict(default=20.0, doc="""``Langevin_eta``; the actual largest step is ``step_size *
        mean(sigma^2)``."""),
    batch_size=dict(default=512),
    learning_rate=dict(default=0.01, doc="Learning rate of ``optimizer`` (the reference's SGD uses 0.01)."),
    optimizer=dict(default="sgd"),
    lr_schedule=dict(default="cosine"),
    data_noise=dict(default=0.0),
    max_grad_norm=dict(default=10.0),
    # The divergence the penalty prevents is the neural models'; the GRBM trains without it.
    energy_l2=dict(default=0.0, doc="""Weight of the penalty ``mean(E_data^2) + mean(E_samples^2)`` (Du &
        Mordatch 2019); 0, as in the reference."""),
    features=_features(GRBM_FEATURES, "``transform`` returns p(h = 1 | v) or the logits eta(v)."),
)
