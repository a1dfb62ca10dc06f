"""scikit-learn's density estimators as ``benchmarks/density.py`` compares with them: a
GaussianMixture with its number of components chosen by BIC and a KernelDensity with its
bandwidth chosen by cross-validation, each with ``score`` as a mean over rows."""

from __future__ import annotations

import numpy as np


class GMMByBIC:
    """GaussianMixture (full covariance) with the number of components chosen by BIC."""

    def __init__(self, max_components=10, random_state=0):
        self.max_components, self.random_state = max_components, random_state

    def fit(self, X):
        from sklearn.mixture import GaussianMixture

        fits = [GaussianMixture(k, covariance_type="full", random_state=self.random_state).fit(X)
                for k in range(1, min(self.max_components, len(X) - 1) + 1)]
        self.bic_ = [float(g.bic(X)) for g in fits]
        self.model_ = fits[int(np.argmin(self.bic_))]
        self.n_components_ = self.model_.n_components
        return self

    def score_samples(self, X):
        return self.model_.score_samples(X)

    def score(self, X):
        return float(np.mean(self.score_samples(X)))

    def sample(self, n_samples, random_state=None):
        self.model_.random_state = random_state
        return self.model_.sample(n_samples)[0]

    def describe(self):
        return {"n_components": self.n_components_, "bic": self.bic_}


class KDEByCV:
    """Gaussian KernelDensity with its bandwidth chosen by k-fold cross-validated likelihood."""

    def __init__(self, bandwidths, cv=5):
        self.bandwidths, self.cv = bandwidths, cv

    def fit(self, X):
        from sklearn.model_selection import GridSearchCV
        from sklearn.neighbors import KernelDensity

        search = GridSearchCV(KernelDensity(), {"bandwidth": list(self.bandwidths)}, cv=self.cv).fit(X)
        self.model_ = search.best_estimator_
        return self

    def score_samples(self, X):
        return self.model_.score_samples(X)

    def score(self, X):
        return float(np.mean(self.score_samples(X)))  # KernelDensity.score is a sum

    def sample(self, n_samples, random_state=None):
        return self.model_.sample(n_samples, random_state=random_state)

    def describe(self):
        return {"bandwidth": float(self.model_.bandwidth)}
