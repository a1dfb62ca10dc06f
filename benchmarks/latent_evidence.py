"""Does the latent layer of a fitted NN-EFH matter? Three measurements and the latent usage.

For one model that ``benchmarks/sample_quality.py --save-models`` wrote (issue 29, item 2):

(a) Latent redraws against a frozen latent: Gibbs-Langevin from noise with z redrawn after
    every round (M rounds of L steps) against the same chain with z drawn once at the start
    and held (one round of M * L steps): the same seed, so the same starting noise, the same
    first latent draw and the same total number of Langevin steps. Both sets are judged as
    ``sample_quality.py`` judges samples (Fréchet distance to test images, confidence,
    coverage). If the latent matters, the two differ.
(b) The paper's Fig. 2: the mean distance ``||x_end - x_start||`` travelled by Gibbs-Langevin
    (``--distance-budget``, 5 x 60 as in the paper) over that of Langevin alone (300 steps) from
    the same starts (``skefh.metrics.chain_distance``), on the marginal free energy and with the
    first latent draw fixed, from noise and from test images (the paper reports about 10).
(c) Algorithm 2 as in the paper's Fig. 5a: chains whose latent starts from the posterior of test
    images. The share of chains whose judged class changes between the first and the last Gibbs
    round and how often the final judged class is the starting image's label, beside the same
    chains with their first latent draw held (Langevin alone moves the class too) and, for the
    label, beside the chains from noise that share their starting noise (chance); and the
    Fréchet distance between these samples and samples from noise (beside the distance between
    two sets from noise drawn with different seeds: the size of the sampling noise).

plus ``skefh.metrics.latent_usage`` on the test images and (d) ``skefh.metrics.redraw_shift``: how far
a redraw of z moves the mode of p(x | z) at test images, to first order, beside the width of that
conditional and the distance between test images (why (a) to (c) find what they find). Prints a table and writes
``results/latent_evidence/<name>.json`` (name: the model file's stem).

``--init buffer`` starts the chains of (a) from the training chains' replay buffer, where
``sample()`` starts a model trained with persistent chains (the ``density`` preset), instead of
from noise. ``--dequantised`` reads a model that ``benchmarks/dequantised_pixels.py
--save-models`` fitted on pixels as integer levels plus uniform noise: rows go to it as their
levels' midpoints and its samples come back as levels in [0, 1], clipped, before they are
judged (a model whose pixels are not in [0, 1] is refused without it).

    python benchmarks/sample_quality.py --dataset digits --models nnefh --preset cpu-short-run \\
        --updates 300 --n-samples 500 --save-models --name d300
    python benchmarks/latent_evidence.py results/sample_quality/d300-nnefh.joblib --dataset digits

The chains of (a) and (c) use the budget ``sample`` runs from noise by default (for a model
trained on chains from noise, one and a half times its training steps; ``--gibbs-steps`` and
``--langevin-steps`` change M and L) and start their visible state from N(0, I) even for a model
trained with a replay buffer. The Algorithm 2 chains start from the same test images the
samples are compared with, as in ``sample_quality.py``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import joblib
import numpy as np
import torch
from sample_budget import parse_budget
from sample_quality import draw, load_judge

from skefh.datasets import load_dataset
from skefh.metrics import chain_distance, frechet_distance, latent_usage, redraw_shift


class DequantisedPixels:
    """A model fitted on dequantised pixels, seen in the dataset loader's units.

    ``benchmarks/dequantised_pixels.py`` fits on integer pixel levels plus uniform noise in
    [0, 1) (digits: 0 to 16, Fashion-MNIST: 0 to 255). A loader row ``x`` in [0, 1] is the level
    ``x * levels``, given to the model at the midpoint of its cell; the model's samples go back
    by the inverse map, clipped into [0, 1]. Every other attribute is the model's own.
    """

    def __init__(self, est, levels: int):
        self.est, self.levels = est, levels

    def __getattr__(self, name):
        return getattr(self.est, name)

    def to_model(self, X):
        return np.asarray(X, dtype=np.float64) * self.levels + 0.5

    def to_loader(self, samples):
        return np.clip((np.asarray(samples) - 0.5) / self.levels, 0.0, 1.0)

    def sample(self, n_samples=1, X=None, **options):
        return self.to_loader(self.est.sample(n_samples, None if X is None else self.to_model(X), **options))

    def sample_chains(self, n_samples=1, X=None, **options):
        return self.to_loader(self.est.sample_chains(n_samples, None if X is None else self.to_model(X), **options))


#: Integer pixel levels of each dataset (the largest level): the inverse of the loaders' scaling.
PIXEL_LEVELS = {"digits": 16, "fashion-mnist": 255, "mnist": 255}


def pixel_upper_bound(est) -> float:
    """The largest pixel value of the model's data units (1 for the loaders' images)."""
    ranges = est.range_map_
    return float(np.max(ranges.offset + 1.0 / ranges.scale))


def redraw_against_frozen(est, judge, reference, n, seed, gibbs_steps=None, langevin_steps=None, init="noise"):
    """Judge samples of Gibbs-Langevin with latent redraws and with the first latent held.

    Parameters
    ----------
    est : fitted NNEFH
    judge : skefh.metrics.ImageJudge
    reference : ndarray of shape (n_reference, n_features)
        Held-out real images.
    n : int
        Chains per sampler.
    seed : int
        ``random_state`` of both samplers: the same starting noise and first latent draw.
    gibbs_steps, langevin_steps : int, optional
        M and L of the redrawing chain; default the budget ``sample`` runs from ``init``.
    init : {"noise", "buffer", "auto"}, default="noise"
        Where both chains start (as :meth:`skefh.NNEFH.sample`'s ``init``).

    Returns
    -------
    record : dict
        ``"redraw"`` and ``"frozen"``: their budgets (``gibbs_steps``, ``langevin_steps``,
        ``total_langevin_steps``), ``seconds`` and the judge's quality numbers.
    samples : dict
        The two sets of samples, ndarray of shape (n, n_features) each.
    """
    settings = est.sampling_settings(gibbs_steps=gibbs_steps, langevin_steps=langevin_steps, init=init)
    rounds, steps = settings.n_gibbs, settings.n_langevin
    # One round of M * L steps: z drawn from p(z | x_0) once, then held (the draw after the
    # round does not touch x).
    budgets = {"redraw": (rounds, steps), "frozen": (1, rounds * steps)}
    record, samples = {}, {}
    for chain, (g, lang) in budgets.items():
        start = time.perf_counter()
        samples[chain] = draw(est, init, n, None, seed, gibbs_steps=g, langevin_steps=lang)
        seconds = time.perf_counter() - start
        record[chain] = {"gibbs_steps": g, "langevin_steps": lang, "total_langevin_steps": g * lang,
                         "seconds": seconds, **judge.evaluate(samples[chain], reference).to_dict()}
    record["step_schedule"] = settings.schedule  # "cosine" restarts per round: not like for like
    return record, samples


def chain_distances(est, n_chains, starts, gibbs_steps=5, langevin_steps=60, seed=0):
    """The paper's Fig. 2: distance travelled by Gibbs-Langevin over that of Langevin alone.

    Parameters
    ----------
    est : fitted NNEFH
    n_chains : int
        Chains from noise.
    starts : dict
        ``{label: rows or None}``: None starts ``n_chains`` chains from N(0, I), rows (in the
        units of the data) start one chain at each.
    gibbs_steps, langevin_steps : int, default=5, 60
        Gibbs-Langevin's budget; Langevin alone runs their product.
    seed : int, default=0

    Returns
    -------
    dict
        ``{start: {target: ChainDistance.to_dict()}}`` for the targets ``"marginal"`` and
        ``"fixed_latent"``.
    """
    return {label: {target: chain_distance(est, n_chains, gibbs_steps=gibbs_steps, langevin_steps=langevin_steps,
                                           target=target, start=rows, random_state=seed).to_dict()
                    for target in ("marginal", "fixed_latent")}
            for label, rows in starts.items()}


def algorithm2_chains(est, judge, X, y, n, seed, gibbs_steps=None, langevin_steps=None, noise_samples=None):
    """Algorithm 2 chains started from the posterior of labelled images, judged at every round.

    Parameters
    ----------
    est : fitted NNEFH
    judge : skefh.metrics.ImageJudge
    X : ndarray of shape (n_rows, n_features)
        Held-out images; chain i starts its latent from row ``i % n_rows``.
    y : ndarray of shape (n_rows,)
        Their labels.
    n : int
        Number of chains.
    seed : int
        ``random_state`` of every sampler call.
    gibbs_steps, langevin_steps : int, optional
        Default the budget ``sample`` runs from noise.
    noise_samples : ndarray of shape (n, n_features), optional
        Samples from noise with the same budget and seed, if already drawn (the ``"redraw"``
        samples of :func:`redraw_against_frozen` are); drawn here otherwise.

    Returns
    -------
    dict
        ``class_change`` (share of chains whose judged class differs between the first and the
        last round), ``label_agreement`` (share whose last-round class is the starting image's
        label), both again for the same chains with the first latent draw held
        (``*_frozen``: Langevin alone moves the class this much), ``noise_label_agreement``
        (the same for the chains from noise, which share their starting noise with these:
        chance), per-round curves of both shares, the Fréchet distances
        ``fd_posterior_vs_noise`` and ``fd_noise_vs_noise`` (another seed) in the judge's
        features, the judge's quality of the final samples against ``X``, and the class arrays
        ``labels``, ``first_round``, ``last_round``, ``last_round_frozen``.
    """
    rows = np.arange(n) % len(X)  # as sample_quality.draw: each image starts several chains when n > len(X)
    budget = dict(gibbs_steps=gibbs_steps, langevin_steps=langevin_steps)
    start = time.perf_counter()
    # Column 0 is the starting noise, column m the state after Gibbs round m. The last column is
    # what sample(X=X[rows]) returns with the same seed (the tests check it).
    frames = est.sample_chains(X=X[rows], init="noise", random_state=seed, **budget)
    seconds = time.perf_counter() - start
    n_rounds = frames.shape[1] - 1
    classes = judge.predict(frames[:, 1:].reshape(n * n_rounds, -1)).reshape(n, n_rounds)  # (n, M)
    labels = np.asarray(y)[rows]
    posterior = frames[:, -1]
    # The control: the same chains with the posterior draw held for all M * L steps. Their first
    # L steps take the same noise as round 1 (for a constant step schedule), so they pass
    # through the same first-round state and only the redraws separate the two.
    settings = est.sampling_settings(**budget, init="noise")
    frozen = est.sample(X=X[rows], init="noise", random_state=seed, gibbs_steps=1,
                        langevin_steps=settings.n_gibbs * settings.n_langevin)
    frozen_classes = judge.predict(frozen)
    if noise_samples is None:
        noise_samples = draw(est, "noise", n, None, seed, **budget)
    other_noise = draw(est, "noise", n, None, seed + 1, **budget)
    posterior_features = judge.features(posterior)
    noise_features = judge.features(noise_samples)
    return {
        "n_chains": n,
        "gibbs_steps": n_rounds,
        "langevin_steps": settings.n_langevin,
        "seconds": seconds,
        "class_change": float(np.mean(classes[:, 0] != classes[:, -1])),
        "label_agreement": float(np.mean(classes[:, -1] == labels)),
        "class_change_frozen": float(np.mean(classes[:, 0] != frozen_classes)),
        "label_agreement_frozen": float(np.mean(frozen_classes == labels)),
        "noise_label_agreement": float(np.mean(judge.predict(noise_samples) == labels)),
        "class_change_by_round": np.mean(classes != classes[:, :1], axis=0).tolist(),
        "label_agreement_by_round": np.mean(classes == labels[:, None], axis=0).tolist(),
        "fd_posterior_vs_noise": frechet_distance(posterior_features, noise_features),
        "fd_noise_vs_noise": frechet_distance(judge.features(other_noise), noise_features),
        "quality": judge.evaluate(posterior, X).to_dict(),
        "labels": labels.tolist(),
        "first_round": classes[:, 0].tolist(),
        "last_round": classes[:, -1].tolist(),
        "last_round_frozen": frozen_classes.tolist(),
    }


def print_report(results) -> None:
    """Print the table of :func:`main`'s results.

    Parameters
    ----------
    results : dict
        With the keys ``n_samples``, ``redraw_vs_frozen``, ``chain_distance``, ``algorithm2``
        ``latent_usage`` and ``redraw_shift``.
    """
    a, c = results["redraw_vs_frozen"], results["algorithm2"]
    start = "the training chains' buffer" if results.get("init", "noise") != "noise" else "noise"
    print(f"\n(a) latent redrawn every round vs frozen after its first draw, {results['n_samples']} chains "
          f"from {start}, same seed")
    print(f"  {'chain':<32}{'steps':>9}{'FD':>10}{'confidence':>12}{'coverage':>10}")
    for key, label in (("redraw", "Gibbs-Langevin (z redrawn)"), ("frozen", "z frozen after the first draw")):
        r = a[key]
        print(f"  {label:<32}{r['gibbs_steps']:>4} x{r['langevin_steps']:>3}{r['frechet_distance']:>10.2f}"
              f"{r['confidence']:>12.3f}{r['coverage']:>10.2f}")
    print("\n(b) distance travelled, Gibbs-Langevin over Langevin alone (paper's Fig. 2: about 10)")
    print(f"  {'start':<8}{'Langevin target':<18}{'chains':>7}{'budget':>9}{'Gibbs-Langevin':>16}"
          f"{'Langevin':>10}{'ratio':>8}")
    for start, targets in results["chain_distance"].items():
        for target, d in targets.items():
            print(f"  {start:<8}{target:<18}{d['n_chains']:>7}{d['gibbs_steps']:>4} x{d['langevin_steps']:>3}"
                  f"{d['gibbs_langevin']:>16.3f}{d['langevin']:>10.3f}{d['ratio']:>8.2f}")
    print(f"\n(c) Algorithm 2 from {c['n_chains']} test images ({c['gibbs_steps']} x {c['langevin_steps']} steps)")
    print(f"  judged class changed between the first and the last round   {c['class_change']:7.1%}"
          f"   (z frozen: {c['class_change_frozen']:.1%})")
    print(f"  final class = the starting image's label                    {c['label_agreement']:7.1%}"
          f"   (z frozen: {c['label_agreement_frozen']:.1%}; chains from noise: {c['noise_label_agreement']:.1%})")
    print(f"  FD, posterior samples vs samples from noise                 {c['fd_posterior_vs_noise']:7.2f}"
          f"   (noise vs noise, another seed: {c['fd_noise_vs_noise']:.2f})")
    q = c["quality"]
    print(f"  posterior samples vs the test images: FD {q['frechet_distance']:.2f}, confidence "
          f"{q['confidence']:.3f}, coverage {q['coverage']:.2f}")
    print("\nlatent usage on {n_rows} test images: {n_units} units, varying {varying:.1%}, varying (std >= 0.1) "
          "{varying_std:.1%}, always on {always_on:.1%}, always off {always_off:.1%}, posterior std "
          "{posterior_std:.3g}, entropy {entropy:.3f} bits, logit dimension {logit_dimension:.1f}"
          .format(**results["latent_usage"]))
    print("(d) a redraw of z moves the mode of p(x | z) by {mean_shift:.3g} on average (median {median_shift:.3g}); "
          "the conditional's width {conditional_spread:.3g}, the distance between test images {row_distance:.3g};\n"
          "    with the same posteriors a redraw would move it that far at temperature {moving_temperature:.3g}, "
          "where the conditional's width is {spread_at_moving_temperature:.3g}"
          .format(**results["redraw_shift"]), flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a fitted NNEFH pickled by sample_quality.py --save-models")
    parser.add_argument("--dataset", default="fashion-mnist", choices=["digits", "fashion-mnist", "mnist"])
    parser.add_argument("--n-samples", type=int, default=500, help="chains of (a) and (c)")
    parser.add_argument("--n-reference", type=int, default=2000, help="held-out images the samples are compared with")
    parser.add_argument("--gibbs-steps", type=int, default=None, help="M of (a) and (c) (default: the model's)")
    parser.add_argument("--langevin-steps", type=int, default=None, help="L of (a) and (c) (default: the model's)")
    parser.add_argument("--distance-budget", default="5x60", help="GIBBSxLANGEVIN of (b) (the paper's 5x60)")
    parser.add_argument("--n-chains", type=int, default=100, help="chains of (b), from noise and from test images")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default=None)
    parser.add_argument("--out-dir", default="results/latent_evidence")
    parser.add_argument("--judge-dir", default="results/judge", help="where judges are cached")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--init", default="noise", choices=["noise", "buffer", "auto"],
                        help="where the chains of (a) start (sample()'s init)")
    parser.add_argument("--dequantised", action="store_true",
                        help="a model fitted by dequantised_pixels.py (integer pixel levels plus noise)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    data = load_dataset(args.dataset)
    est = joblib.load(args.model)
    if not getattr(getattr(est, "module_", None), "has_latent", False):
        parser.error(f"{args.model} holds a {type(est).__name__} without a latent layer")
    if getattr(est, "image_shape_", None) is None:
        # A table's rows need not be in the dataset loader's units (dequantised pixels are not):
        # its samples would be judged, and its distances measured, in the wrong ones.
        parser.error(f"{args.model} holds a tabular model (image_shape=None); this benchmark judges image models")
    if est.n_features_in_ != data.X_test.shape[1]:
        parser.error(f"the model has {est.n_features_in_} features, {args.dataset} {data.X_test.shape[1]}")
    upper = pixel_upper_bound(est)
    if not args.dequantised and upper > 1.5:
        parser.error(f"{args.model} was fitted on pixels up to {upper:.4g}, not the loader's [0, 1]; "
                     "for a model of dequantised_pixels.py pass --dequantised")
    # The samplers' measurements see the model in the loader's units; the metrics that take the
    # fitted estimator itself get the test images in the model's units.
    view = DequantisedPixels(est, PIXEL_LEVELS[args.dataset]) if args.dequantised else est
    rows = view.to_model if args.dequantised else np.asarray
    judge = load_judge(args.dataset, data, args.judge_dir)
    reference, labels = data.X_test[: args.n_reference], data.y_test[: args.n_reference]
    n, seed = args.n_samples, args.seed
    budget = dict(gibbs_steps=args.gibbs_steps, langevin_steps=args.langevin_steps)
    distance_gibbs, distance_langevin = parse_budget(args.distance_budget)
    settings = est.sampling_settings(**budget, init=args.init)
    results = {"model": args.model, "estimator": type(est).__name__,
               "updates": est.n_iter_, "init": args.init, "dequantised": args.dequantised,
               "dataset": args.dataset, "n_samples": n, "n_reference": len(reference), "seed": seed,
               "sampler": {"gibbs_steps": settings.n_gibbs, "langevin_steps": settings.n_langevin,
                           "step_size": settings.step_size, "temperature": settings.temperatures(est.module_)[0],
                           "schedule": settings.schedule},
               "judge_test_accuracy": judge.accuracy(data.X_test, data.y_test)}
    print(f"{type(est).__name__} at update {est.n_iter_}; judge test accuracy {results['judge_test_accuracy']:.4f}",
          flush=True)

    results["redraw_vs_frozen"], samples = redraw_against_frozen(view, judge, reference, n, seed, init=args.init,
                                                                 **budget)
    starts = {"noise": None, "data": rows(reference[: args.n_chains])}
    results["chain_distance"] = chain_distances(est, args.n_chains, starts, distance_gibbs, distance_langevin, seed)
    # From noise, the redrawing chains of (a) are the chains from noise of (c): the same seed and budget.
    from_noise = samples["redraw"] if args.init == "noise" else None
    results["algorithm2"] = algorithm2_chains(view, judge, reference, labels, n, seed, noise_samples=from_noise,
                                              **budget)
    results["latent_usage"] = latent_usage(est, rows(reference)).to_dict()
    results["redraw_shift"] = redraw_shift(est, rows(reference), random_state=seed).to_dict()
    print_report(results)

    name = args.name or Path(args.model).stem
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"
    path.write_text(json.dumps(results, indent=1))
    print(f"wrote {path}")
    return results


if __name__ == "__main__":
    main()
