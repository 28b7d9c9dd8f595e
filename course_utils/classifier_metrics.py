"""Scores for a star-rating classifier (lesson 06) and the bag-of-words baseline it must beat.

Accuracy alone hides two things worth seeing: how the classes fare one by one (macro-F1
gives every star rating the same weight, however rare) and how far off the mistakes are
(a 4-star review called 5 is a smaller error than one called 1).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "BaselineResult",
    "class_probabilities",
    "classification_scores",
    "confusion_matrix",
    "cross_fitted_probabilities",
    "majority_baseline",
    "tfidf_baseline",
]


def _labels(values: ArrayLike, name: str) -> np.ndarray:
    array = np.asarray(values.cpu() if hasattr(values, "cpu") else values)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence of labels; got {array.shape}")
    return array.astype(np.int64)


def classification_scores(y_true: ArrayLike, y_pred: ArrayLike) -> dict[str, float]:
    """``accuracy``, ``macro_f1`` and ``within_one`` (predicted stars off by at most one).

    Macro-F1 is the mean over the classes present in ``y_true`` of each class's F1 score.
    """
    from sklearn.metrics import f1_score

    true, pred = _labels(y_true, "y_true"), _labels(y_pred, "y_pred")
    if true.shape != pred.shape:
        raise ValueError(f"y_true has {true.size} labels but y_pred has {pred.size}")
    return {
        "accuracy": float(np.mean(true == pred)),
        "macro_f1": float(f1_score(true, pred, labels=np.unique(true), average="macro")),
        "within_one": float(np.mean(np.abs(true - pred) <= 1)),
    }


def confusion_matrix(y_true: ArrayLike, y_pred: ArrayLike, num_classes: int) -> np.ndarray:
    """``(num_classes, num_classes)`` counts: row = true class, column = predicted class."""
    true, pred = _labels(y_true, "y_true"), _labels(y_pred, "y_pred")
    if true.shape != pred.shape:
        raise ValueError(f"y_true has {true.size} labels but y_pred has {pred.size}")
    if min(true.min(), pred.min()) < 0 or max(true.max(), pred.max()) >= num_classes:
        raise ValueError(f"every label must lie in 0..{num_classes - 1}")
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (true, pred), 1)
    return matrix


@dataclass
class BaselineResult:
    """What a baseline predicted for the test reviews, and how long fitting it took."""

    name: str
    predictions: np.ndarray
    seconds: float
    model: object = None


def majority_baseline(train_labels: ArrayLike, num_test: int) -> BaselineResult:
    """Predict the most frequent training label for every test review."""
    labels = _labels(train_labels, "train_labels")
    majority = int(np.bincount(labels).argmax())
    return BaselineResult("majority class", np.full(num_test, majority), 0.0)


def tfidf_baseline(
    train_texts: Sequence[str],
    train_labels: ArrayLike,
    test_texts: Sequence[str],
    *,
    c: float = 4.0,
    class_weight: str | None = None,
    seed: int = 0,
) -> BaselineResult:
    """TF-IDF of words and word pairs, then logistic regression: the bag-of-words baseline.

    Word order is ignored beyond adjacent pairs; ``c`` is the inverse regularisation
    strength (4 scored best of 1, 4 and 16 on lesson 06's validation reviews, with and
    without class weights). ``class_weight="balanced"`` weighs each review by the inverse
    frequency of its class, so rare ratings count as much as common ones.
    """
    start = time.perf_counter()
    pipeline = _tfidf_pipeline(c, class_weight, seed)
    pipeline.fit(list(train_texts), _labels(train_labels, "train_labels"))
    predictions = pipeline.predict(list(test_texts))
    name = "TF-IDF + logistic regression" + (", balanced" if class_weight else "")
    return BaselineResult(name, predictions, time.perf_counter() - start, pipeline)


def class_probabilities(fitted, texts: Sequence[str], num_classes: int) -> np.ndarray:
    """A fitted baseline's probabilities for ``texts``: ``(len(texts), num_classes)``.

    ``fitted`` is the ``model`` of a :class:`BaselineResult` (any scikit-learn classifier
    with ``predict_proba``). Column ``c`` is class ``c``; a class the baseline never saw in
    training gets probability 0.
    """
    classes = np.asarray(fitted.classes_).astype(np.int64)
    if classes.min() < 0 or classes.max() >= num_classes:
        raise ValueError(f"the baseline knows classes {classes.tolist()}, not 0..{num_classes - 1}")
    probabilities = np.zeros((len(texts), num_classes))
    if len(texts):
        probabilities[:, classes] = fitted.predict_proba(list(texts))
    return probabilities


def _tfidf_pipeline(c: float, class_weight: str | None, seed: int):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    return make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
        LogisticRegression(C=c, max_iter=2000, class_weight=class_weight, random_state=seed),
    )


def cross_fitted_probabilities(
    texts: Sequence[str],
    labels: ArrayLike,
    *,
    folds: int = 5,
    c: float = 4.0,
    class_weight: str | None = "balanced",
    seed: int = 0,
) -> np.ndarray:
    """Each review's class probabilities from a baseline that never saw it: ``(n, classes)``.

    The reviews are split into ``folds`` stratified parts; the TF-IDF baseline (as in
    :func:`tfidf_baseline`) is fitted on all parts but one and predicts that one. A baseline
    fitted on every review would instead lean to each review's own label, having learned it
    (99% right on lesson 06's offline training reviews): a teacher that repeats the labels.
    Columns are the classes 0 to the largest label; a class absent from a fold's training
    part gets probability 0 there.
    """
    from sklearn.model_selection import StratifiedKFold
    from sklearn.utils.parallel import Parallel, delayed

    texts, y = list(texts), _labels(labels, "labels")
    if len(texts) != y.size:
        raise ValueError(f"{len(texts)} texts but {y.size} labels")
    if folds < 2:
        raise ValueError(f"folds must be at least 2; got {folds}")
    smallest = int(np.bincount(y)[np.unique(y)].min())
    if smallest < 2:
        raise ValueError("every class needs at least 2 reviews to be cross-fitted")
    # a class with fewer reviews than folds: fewer folds, so each fold holds one of them
    splitter = StratifiedKFold(n_splits=min(folds, smallest), shuffle=True, random_state=seed)
    splits = list(splitter.split(np.zeros(y.size), y))
    num_classes = int(y.max()) + 1
    fold = partial(
        _fit_and_predict,
        texts,
        y,
        num_classes=num_classes,
        c=c,
        class_weight=class_weight,
        seed=seed,
    )
    jobs = min(len(splits), os.cpu_count() or 1)  # the folds are independent: one per core
    results = Parallel(n_jobs=jobs)(delayed(fold)(*rows) for rows in splits)
    probabilities = np.zeros((y.size, num_classes))
    for (_, predict_rows), predicted in zip(splits, results, strict=True):
        probabilities[predict_rows] = predicted
    return probabilities


def _fit_and_predict(
    texts: list[str], y: np.ndarray, fit_rows, predict_rows, *, num_classes, c, class_weight, seed
) -> np.ndarray:
    """One fold: fit on ``fit_rows``; the probabilities of ``predict_rows``, a column a class."""
    pipeline = _tfidf_pipeline(c, class_weight, seed)
    pipeline.fit([texts[i] for i in fit_rows], y[fit_rows])
    return class_probabilities(pipeline, [texts[i] for i in predict_rows], num_classes)
