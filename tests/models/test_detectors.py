"""The detector adapter, the registry (one parametrised smoke test) and score normalisation."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.metrics import roc_auc_score

from iccaudit.detect.models import DETECTORS, OutlierDetector
from iccaudit.detect.models.detectors import combine, normalise
from iccaudit.detect.models.scoring import score_items


def _blobs(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """400 inliers around 0 and 20 outliers shifted by 6 in every dimension (PyOD-style)."""
    rng = np.random.default_rng(seed)
    X = np.vstack([rng.normal(0, 1, (400, 3)), rng.normal(6, 1, (20, 3))])
    return X, np.r_[np.zeros(400), np.ones(20)]


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_registry_detector_quality_floor(name, labelled_items, settings):
    X, y = _blobs()
    det = OutlierDetector(detector=name, contamination=0.05, random_state=0).fit(X)
    assert det.decision_scores_.shape == (len(X),)
    assert roc_auc_score(y, det.decision_scores_) >= 0.8
    assert set(np.unique(det.labels_)) <= {0, 1}
    # The same detector alone as the ensemble on item-shaped data, peer groups and all.
    items, labels = labelled_items
    fast = settings.model_copy(update={"ensemble": [name],
                                       "detector_params": {"iforest": {"n_estimators": 30}}})
    scored = score_items(items, fast, seed=0)
    truth = scored.lines["item_id"].map(dict(zip(items["item_id"], labels, strict=True)))
    assert roc_auc_score(truth, scored.lines["score"]) >= 0.8


def test_init_stores_params_without_validation():
    det = OutlierDetector(detector="no-such-detector", contamination=7)
    assert det.get_params() == {
        "detector": "no-such-detector", "contamination": 7, "random_state": None, "params": None,
    }
    with pytest.raises(ValueError, match="unknown detector"):
        det.fit(np.zeros((5, 2)))
    with pytest.raises(ValueError, match="contamination"):
        OutlierDetector(contamination=0.9).fit(np.random.default_rng(0).normal(size=(5, 2)))


def test_sklearn_conventions_clone_and_fit_returns_self():
    X, _ = _blobs()
    det = OutlierDetector(detector="iforest", random_state=3, params={"n_estimators": 20})
    assert not hasattr(det, "decision_scores_")
    twin = clone(det)
    assert twin is not det and twin.get_params() == det.get_params()
    assert det.fit(X) is det
    for attr in ("estimator_", "decision_scores_", "threshold_", "labels_", "n_features_in_"):
        assert hasattr(det, attr)
    assert not hasattr(twin, "decision_scores_")
    # Higher = more abnormal; the same seed gives the same scores.
    assert det.decision_scores_[-20:].mean() > det.decision_scores_[:400].mean()
    np.testing.assert_array_equal(twin.fit(X).decision_scores_, det.decision_scores_)


def test_fit_refuses_missing_values():
    X, _ = _blobs()
    X[3, 1] = np.nan
    with pytest.raises(ValueError, match="missing"):
        OutlierDetector().fit(X)


@pytest.mark.parametrize("method", ["rank", "unify", "minmax"])
def test_normalise_is_monotone_and_bounded(method):
    s = np.array([0.1, 5.0, 0.3, 0.2, 9.0, 0.25])
    out = normalise(s, method)
    assert ((out >= 0) & (out <= 1)).all()
    assert np.argmax(out) == 4
    assert (np.diff(out[np.argsort(s)]) >= 0).all()


def test_rank_normalisation_is_modest_in_small_groups():
    assert normalise(np.arange(5.0), "rank").max() == pytest.approx(5 / 6)


def test_combine_mean_and_max():
    a, b = np.array([0.2, 1.0]), np.array([0.6, 0.0])
    np.testing.assert_allclose(combine([a, b], "mean"), [0.4, 0.5])
    np.testing.assert_allclose(combine([a, b], "max"), [0.6, 1.0])
