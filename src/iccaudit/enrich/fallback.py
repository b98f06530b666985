"""The learned fallback: a category guess for texts the lexicon does not recognise.

A scikit-learn pipeline, TF-IDF on character 1-4 grams (``char_wb``: Chinese and mixed
text need no tokenizer) and a logistic regression, trained on the lexicon's category
examples and the labelled lines of ``rules/lexicon/training.csv`` (``text,category``). It
predicts for every unrecognised distinct text at once; a guess below ``min_confidence``
(the lexicon's ``model:`` section) is no guess. Deterministic: the solver is, and the
training rows are sorted.

The sandbox's two Python steps live here too: :func:`normalise_step` writes ``_text_norm``
(each distinct text normalised, :mod:`iccaudit.enrich.textnorm`) and an empty
``_text_model``; :func:`fallback_step` fills ``_text_model`` once ``_items_class`` exists.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from iccaudit.enrich.textnorm import fold, rewrite

if TYPE_CHECKING:
    import duckdb

    from iccaudit.enrich.lexicon import Lexicon

DEFAULT_MIN_CONFIDENCE = 0.5


class CategoryModel:
    """Character n-gram TF-IDF + logistic regression over line texts.

    Parameters
    ----------
    min_confidence : float
        A prediction whose probability is below this is returned as ``None``.
    seed : int
        The solver's random state (the liblinear solver used is deterministic anyway).
    """

    def __init__(self, min_confidence: float = DEFAULT_MIN_CONFIDENCE, seed: int = 0) -> None:
        self.min_confidence = min_confidence
        self.seed = seed

    def fit(self, texts: list[str], labels: list[str]) -> CategoryModel:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline

        if len(set(labels)) < 2:
            raise ValueError("the fallback needs training lines of at least two categories")
        order = sorted(range(len(texts)), key=lambda i: (labels[i], texts[i]))
        self.pipeline_ = make_pipeline(
            TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 4), sublinear_tf=True),
            LogisticRegression(C=10.0, max_iter=2000, random_state=self.seed))
        self.pipeline_.fit([texts[i] for i in order], [labels[i] for i in order])
        self.classes_ = list(self.pipeline_.classes_)
        self.n_training_ = len(texts)
        return self

    def predict(self, texts: list[str]) -> tuple[list[str | None], np.ndarray]:
        """The category of each text (None below ``min_confidence``) and its probability."""
        if not texts:
            return [], np.zeros(0)
        proba = self.pipeline_.predict_proba(texts)
        best = proba.argmax(axis=1)
        conf = proba[np.arange(len(texts)), best]
        labels = [self.classes_[b] if c >= self.min_confidence else None
                  for b, c in zip(best, conf, strict=True)]
        return labels, conf


def training_rows(lexicon: Lexicon) -> tuple[list[str], list[str]]:
    """The lexicon's category examples that must match, and ``training.csv``'s lines."""
    texts: list[str] = []
    labels: list[str] = []
    for c in lexicon.concepts.values():
        if c.category:
            for e in c.examples:
                if e.should_match:
                    texts.append(e.normalised)
                    labels.append(c.category)
    if lexicon.folder is not None and (path := lexicon.folder / "training.csv").is_file():
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        normalised = rewrite(fold(frame["text"], lexicon.keep), lexicon.text_rewrites)
        texts += [str(t) for t in normalised]
        labels += [str(c) for c in frame["category"]]
    return texts, labels


_TRAINED: dict[str, CategoryModel] = {}


def _train(lexicon: Lexicon) -> CategoryModel:
    settings: dict[str, Any] = dict(lexicon.model)
    texts, labels = training_rows(lexicon)
    model = CategoryModel(float(settings.get("min_confidence", DEFAULT_MIN_CONFIDENCE)),
                          int(settings.get("seed", 0)))
    return model.fit(texts, labels)


def trained_model(lexicon: Lexicon) -> CategoryModel:
    """The fallback trained for a lexicon (once per lexicon content)."""
    if lexicon.sha256 not in _TRAINED:
        _TRAINED[lexicon.sha256] = _train(lexicon)
    return _TRAINED[lexicon.sha256]


_TEXT_COLUMNS = ("item_name", "model", "spec", "unit", "condition", "brand")
_SHORT = {"item_name": "name", "model": "model", "spec": "spec", "unit": "unit",
          "condition": "condition", "brand": "brand"}


def normalise_step(con: duckdb.DuckDBPyConnection, lexicon: Lexicon) -> list[str]:
    """``_text_norm``: each distinct text's columns normalised (``<col>_n``) and, for the
    name, model and spec, with the name rewrites too (``<col>_w``); an empty ``_text_model``."""
    keys = con.execute(f"SELECT tid, {', '.join(_TEXT_COLUMNS)} FROM _text_keys").df()
    out = pd.DataFrame({"tid": keys["tid"].astype("int64")})
    for col in _TEXT_COLUMNS:
        short = _SHORT[col]
        norm = rewrite(fold(keys[col], lexicon.keep), lexicon.text_rewrites)
        out[f"{short}_n"] = norm
        if col in ("item_name", "model", "spec"):
            out[f"{short}_w"] = rewrite(norm, lexicon.name_rewrites)
    out = out.astype(object).where(out.notna(), None)
    out["tid"] = keys["tid"].astype("int64")
    con.register("_text_norm_frame", out)
    cols = ", ".join(f'CAST("{c}" AS VARCHAR) AS "{c}"' for c in out.columns if c != "tid")
    con.execute(f"CREATE TEMP TABLE _text_norm AS SELECT CAST(tid AS BIGINT) AS tid, {cols} "
                "FROM _text_norm_frame")
    con.unregister("_text_norm_frame")
    con.execute("CREATE TEMP TABLE _text_model (tid BIGINT, model_category VARCHAR, "
                "model_confidence DOUBLE)")
    return ["_text_norm", "_text_model"]


def fallback_step(con: duckdb.DuckDBPyConnection, lexicon: Lexicon) -> list[str]:
    """Fill ``_text_model`` with the fallback's guess for every text the lexicon leaves
    without a category (one prediction call for all of them)."""
    rows = con.execute("SELECT tid, text FROM _items_class WHERE recognised_by = 'none' "
                       "ORDER BY tid").df()
    if rows.empty:
        return []
    labels, conf = trained_model(lexicon).predict([str(t) for t in rows["text"]])
    guesses = pd.DataFrame({"tid": rows["tid"].astype("int64"),
                            "model_category": pd.Series(labels, dtype=object),
                            "model_confidence": conf.astype("float64")})
    con.register("_text_model_frame", guesses)
    con.execute("INSERT INTO _text_model SELECT tid, model_category, model_confidence "
                "FROM _text_model_frame")
    con.unregister("_text_model_frame")
    return []
