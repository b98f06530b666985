"""A thin scikit-learn style adapter over PyOD detectors, an explicit registry, and the
normalisation / combination of their scores.

PyOD is imported inside the factories: it pulls numba and matplotlib, and ``iccaudit --help``
must stay fast.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from types import ModuleType
from typing import Protocol

import numpy as np
import numpy.typing as npt
from sklearn.base import BaseEstimator


class PyodDetector(Protocol):
    """What we use of a PyOD detector (PyOD has no type information of its own)."""

    decision_scores_: np.ndarray
    threshold_: float

    def fit(self, X: np.ndarray) -> object: ...


class DetectorFactory(Protocol):
    """Makes an unfitted PyOD detector: ``factory(contamination, random_state, **params)``."""

    def __call__(self, contamination: float, random_state: int | None,
                 **params: object) -> PyodDetector: ...


def _ecod(contamination: float, random_state: int | None, **params: object) -> PyodDetector:
    from pyod.models.ecod import ECOD
    from pyod.utils import stat_models

    _cache_jit(stat_models)  # column_ecdf's tie handling is a numba function

    est: PyodDetector = ECOD(contamination=contamination, **params)
    return est


def _copod(contamination: float, random_state: int | None, **params: object) -> PyodDetector:
    from pyod.models.copod import COPOD
    from pyod.utils import stat_models

    _cache_jit(stat_models)  # column_ecdf's tie handling is a numba function

    est: PyodDetector = COPOD(contamination=contamination, **params)
    return est


def _hbos(contamination: float, random_state: int | None, **params: object) -> PyodDetector:
    from pyod.models import hbos

    _cache_jit(hbos)
    est: PyodDetector = hbos.HBOS(contamination=contamination, **params)
    return est


def _cache_jit(module: ModuleType) -> None:
    """Keep numba's compiled code of ``module`` on disk between runs.

    HBOS scores through a numba function that PyOD compiles without ``cache=True``: about 2 s
    of every run went into compiling it again (0.2-0.3 s for COPOD's and ECOD's). Numba checks the cache against the source and
    recompiles when it changed; where no cache folder is writable it raises, and we simply
    compile in memory as before.
    """
    for name in dir(module):
        fn = getattr(module, name)
        if hasattr(fn, "enable_caching") and not getattr(fn, "_cache_enabled", False):
            # no writable cache location: numba compiles in memory, as without the cache
            with contextlib.suppress(Exception):
                fn.enable_caching()
                fn._cache_enabled = True


def _iforest(contamination: float, random_state: int | None, **params: object) -> PyodDetector:
    from pyod.models.iforest import IForest

    est: PyodDetector = IForest(contamination=contamination, random_state=random_state,
                                **params)
    return est


#: name -> factory(contamination, random_state, **params). Linear-time detectors only: the
#: pipeline must score a million lines in seconds (no LOF / KNN, which are quadratic).
DETECTORS: dict[str, DetectorFactory] = {
    "ecod": _ecod,
    "copod": _copod,
    "hbos": _hbos,
    "iforest": _iforest,
}


#: Detectors that work column by column (empirical CDF per feature).
_COLUMN_MAJOR = frozenset({"ecod", "copod"})


class OutlierDetector(BaseEstimator):
    """One PyOD detector behind scikit-learn conventions ("higher = more abnormal").

    Parameters
    ----------
    detector : str
        Key of :data:`DETECTORS`.
    contamination : float
        Expected share of outliers, in (0, 0.5]; sets ``threshold_`` as PyOD does.
    random_state : int or None
        Seed of randomised detectors (IForest); ignored by the deterministic ones.
    params : dict or None
        Extra keyword arguments of the PyOD class (e.g. ``{"n_estimators": 100}``).

    Attributes
    ----------
    estimator_ : object
        The fitted PyOD detector.
    decision_scores_ : ndarray of shape (n_samples,)
        Outlier scores of the training rows; higher is more abnormal.
    threshold_ : float
        Score above which PyOD labels a training row an outlier.
    labels_ : ndarray of shape (n_samples,)
        0 inlier, 1 outlier, from ``threshold_``.
    n_features_in_ : int
        Number of features seen in ``fit``.
    """

    def __init__(
        self,
        detector: str = "ecod",
        contamination: float = 0.05,
        random_state: int | None = None,
        params: Mapping[str, object] | None = None,
    ) -> None:
        self.detector = detector
        self.contamination = contamination
        self.random_state = random_state
        self.params = params

    def fit(self, X: npt.ArrayLike, y: object = None) -> OutlierDetector:
        """Fit on ``X`` (n_samples, n_features) and keep the training scores; returns self."""
        if self.detector not in DETECTORS:
            raise ValueError(f"unknown detector {self.detector!r}; known: {', '.join(DETECTORS)}")
        if not 0 < float(self.contamination) <= 0.5:
            raise ValueError(f"contamination must be in (0, 0.5], got {self.contamination!r}")
        X = np.asarray(X, dtype=float)
        if X.ndim != 2 or X.shape[0] < 2 or X.shape[1] < 1:
            raise ValueError(f"X must be 2-D with at least 2 rows and 1 column, got {X.shape}")
        if not np.isfinite(X).all():
            raise ValueError("X has missing or infinite values; impute them before fitting")
        est = DETECTORS[self.detector](
            float(self.contamination), self.random_state, **(self.params or {})
        )
        # ECOD and COPOD sort every column: column-major input makes those sorts contiguous
        # (a third faster at a million lines); HBOS's numba scorer wants row-major.
        est.fit(np.asfortranarray(X) if self.detector in _COLUMN_MAJOR else X)
        self.estimator_ = est
        # The training scores come free with fit; decision_function on the same rows would
        # redo the work (3x slower for ECOD/COPOD, which re-rank the training data).
        self.decision_scores_ = np.asarray(est.decision_scores_, dtype=float)
        self.threshold_ = float(est.threshold_)
        self.labels_ = (self.decision_scores_ > self.threshold_).astype(int)
        self.n_features_in_ = X.shape[1]
        return self


def warm_up(names: list[str]) -> None:
    """Import the named detectors and compile (or load from numba's cache) their code.

    Fitting a detector the first time in a process costs its import (PyOD pulls in sklearn,
    numba and matplotlib: about 1.5 s on a cold 2-core machine) and its JIT; a caller can run
    this early, e.g. in a thread while the input is read. Scoring calls it before fitting
    groups in threads, so that the first compilation happens once, in one thread.
    """
    X = np.linspace(1.0, 2.0, 32).reshape(16, 2)
    for name in names:
        OutlierDetector(detector=name).fit(X)


def normalise(scores: np.ndarray, method: str) -> np.ndarray:
    """Scores of one group mapped to [0, 1], higher = more abnormal.

    ``rank``: the empirical quantile rank / (n + 1), so a group of n lines cannot give more
    than n / (n + 1): small groups are less sure. ``unify``: Kriegel et al. (2011) Gaussian
    scaling, erf((s - mean) / (std * sqrt 2)) clipped at 0 (PyOD's predict_proba 'unify').
    ``minmax``: (s - min) / (max - min).
    """
    s = np.asarray(scores, dtype=float)
    n = len(s)
    if n == 0:
        return s
    if method == "rank":
        from scipy.stats import rankdata

        ranks: np.ndarray = rankdata(s, method="average") / (n + 1)
        return ranks
    if method == "unify":
        from scipy.special import erf

        std = s.std()
        if std == 0:
            return np.zeros(n)
        unified: np.ndarray = np.clip(erf((s - s.mean()) / (std * np.sqrt(2))), 0, 1)
        return unified
    if method == "minmax":
        lo, hi = s.min(), s.max()
        scaled: np.ndarray = np.zeros(n) if hi == lo else (s - lo) / (hi - lo)
        return scaled
    raise ValueError(f"unknown normalisation {method!r}")


def combine(normalised: list[np.ndarray], how: str) -> np.ndarray:
    """Ensemble score from normalised detector scores (mean or max)."""
    stack = np.vstack(normalised)
    combined: np.ndarray = stack.mean(axis=0) if how == "mean" else stack.max(axis=0)
    return combined
