"""The reviews of lesson 06: a training, a validation and a test split, and unlabelled reviews.

The validation split is cut from the training reviews (stratified, so it has the same mix
of star ratings) and decides every choice: the recipe, the number of epochs. The test split
is scored once, at the end. The unlabelled reviews feed the masked-language-model
pretraining; they never include a validation or test review.

Under ``COURSE_QUICK=1`` every split is small (a smoke test that runs in seconds).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from course_utils.data import load_yelp
from course_utils.download import DataUnavailable
from course_utils.settings import quick

__all__ = [
    "QUICK_SIZES",
    "YelpSplits",
    "load_yelp_splits",
    "reviews_to_distil",
    "split_off_validation",
    "unlabelled_reviews",
]

# reviews per split under COURSE_QUICK=1: train (before validation is cut off), test, unlabelled
QUICK_SIZES = {"train": 500, "test": 200, "unlabelled": 300}
UNLABELLED_VARIABLE = "COURSE_YELP_UNLABELLED"


@dataclass(frozen=True)
class YelpSplits:
    """Three DataFrames with columns ``label`` (0-4, stars − 1) and ``text``."""

    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame


def split_off_validation(
    frame: pd.DataFrame, fraction: float = 0.1, *, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Cut a stratified ``fraction`` of ``frame`` off as validation; return ``(train, valid)``.

    Each star rating gives the same share of its reviews (rounded), so both parts keep the
    mix of ratings of ``frame``.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must lie strictly between 0 and 1, got {fraction}")
    valid_rows = []
    for _, group in frame.groupby("label", sort=True):
        take = round(len(group) * fraction)
        valid_rows.extend(group.sample(n=take, random_state=seed).index)
    valid = frame.loc[sorted(valid_rows)]
    train = frame.drop(index=valid.index)
    if len(train) == 0 or len(valid) == 0:
        raise ValueError(f"{len(frame)} reviews are too few to split off {fraction:.0%}")
    return train.reset_index(drop=True), valid.reset_index(drop=True)


def load_yelp_splits(valid_fraction: float = 0.1, *, seed: int = 0) -> YelpSplits:
    """The lesson's training, validation and test reviews (see :func:`course_utils.data.load_yelp`).

    Validation is a stratified ``valid_fraction`` of the training reviews.
    """
    train = load_yelp("train", size=QUICK_SIZES["train"] if quick() else None)
    test = load_yelp("test", size=QUICK_SIZES["test"] if quick() else None)
    train, valid = split_off_validation(train, valid_fraction, seed=seed)
    return YelpSplits(train, valid, test)


def _read_texts(path: Path) -> list[str]:
    frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    if "text" not in frame.columns:
        raise ValueError(f"{path} has no text column (columns: {', '.join(frame.columns)})")
    return frame["text"].astype(str).tolist()


def unlabelled_reviews(
    train_texts: Iterable[str], exclude: Iterable[str], *, size: int | None = None
) -> list[str]:
    """Reviews to pretrain on: the training texts plus more reviews, none of ``exclude``.

    The extra reviews come from the files listed in ``COURSE_YELP_UNLABELLED`` (CSV or
    parquet with a ``text`` column, separated by ``os.pathsep``) when it is set; otherwise,
    when the training reviews come from the Hugging Face hub (``COURSE_YELP_TRAIN`` unset),
    from another sample of ``size`` reviews (default 20,000) of the hub's training split.
    Without either, only the training texts. Duplicates and every text in ``exclude``
    (pass the validation and test texts) are removed; labels are never used.
    """
    excluded = set(exclude)
    texts = list(train_texts)
    listed = os.environ.get(UNLABELLED_VARIABLE, "").strip()
    if quick():
        size = QUICK_SIZES["unlabelled"]
    if listed:
        for name in filter(None, listed.split(os.pathsep)):
            path = Path(name).expanduser()
            if not path.is_file():
                raise FileNotFoundError(f"{UNLABELLED_VARIABLE} lists {path}, which is not a file")
            texts += _read_texts(path)[: size or None]
    elif not os.environ.get("COURSE_YELP_TRAIN"):
        try:  # a different seed gives another balanced sample of the same training split
            texts += load_yelp("train", size=size or 20_000, seed=1)["text"].tolist()
        except DataUnavailable as error:
            print(f"Pretraining on the training reviews only ({str(error).splitlines()[0]}).")
    unique = dict.fromkeys(text for text in texts if text not in excluded)
    return list(unique)


def reviews_to_distil(corpus: Iterable[str], train_texts: Iterable[str], size: int) -> list[str]:
    """The first ``size`` reviews of ``corpus`` that are not training reviews.

    ``corpus`` is the pretraining text (:func:`unlabelled_reviews`, which already leaves out
    the validation and test reviews). These reviews have no label; in fine-tuning they
    learn the teacher's probabilities alone. Fewer than ``size`` if the corpus runs out.
    """
    if size < 0:
        raise ValueError(f"size must be 0 or more; got {size}")
    seen = set(train_texts)
    chosen: list[str] = []
    for text in corpus:
        if len(chosen) >= size:
            break
        if text not in seen:
            seen.add(text)
            chosen.append(text)
    return chosen
