"""Data sets for the course: found locally when possible, downloaded once otherwise.

Every loader looks in the same places, in this order, and stops at the first hit:

1. an explicit ``path`` argument, where the loader takes one;
2. an environment variable naming a local file (CI points these at a shared folder);
3. the course cache (see :func:`cache_dir`), checked against a size and checksum;
4. the real online source, downloaded into the cache with :func:`~course_utils.download.download`.

If all of them fail, :class:`~course_utils.download.DataUnavailable` says what was
tried and exactly which file to put where. Environment variables:

==========================  ========================================================
``COURSE_DATA_DIR``         the cache folder (default: see :func:`cache_dir`)
``NLTK_DATA``               nltk's own search path; a folder holding ``corpora/brown.zip``
``COURSE_BROWN_URL``        where to download ``brown.zip`` from (a mirror of the same file)
``COURSE_YELP_TRAIN``       a CSV or parquet file of Yelp reviews (``label`` 0–4, ``text``)
``COURSE_YELP_TEST``        the same for the test split
``COURSE_CROWS_PAIRS``      the CrowS-Pairs CSV (``crows_pairs_anonymized.csv``)
``COURSE_CROWS_PAIRS_URL``  where to download that CSV from (a mirror of the same file)
``COURSE_OFFLINE``          set to 1 to never touch the network (fail at once instead)
==========================  ========================================================

Pretrained models are loaded by :mod:`course_utils.pretrained`.
"""

from __future__ import annotations

import os
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from course_utils.download import (
    CorruptFileError,
    DataUnavailable,
    cache_dir,
    describe_error,
    download,
    env_file,
    hub_timeouts,
    hub_unreachable,
    offline,
    recorded_sha256,
    unavailable,
    verify_file,
    write_with_checksum,
)

if TYPE_CHECKING:  # nltk is imported when a function needs it
    from nltk.corpus.reader import CategorizedTaggedCorpusReader

__all__ = [
    "BROWN_URL",
    "CROWS_PAIRS_URL",
    "CorruptFileError",
    "DataUnavailable",
    "brown_corpus",
    "brown_file_sentences",
    "brown_sentences",
    "brown_token_sentences",
    "cache_dir",
    "lee_sentences",
    "load_crows_pairs",
    "load_yelp",
]

# Both URLs are pinned to a commit so the checksums below stay valid; the environment
# variables point them at a mirror holding the same bytes.
BROWN_URL = (
    "https://raw.githubusercontent.com/nltk/nltk_data/"
    "5db857e6f7df11eabb5e5665836db9ec8df07e28/packages/corpora/brown.zip"
)
BROWN_SHA256 = "9b275f9b3b95d7bd66ccfb7cd259f445a13bbe5d1f4107aba09fd3e8364bafa6"
BROWN_BYTES = 3_314_357

CROWS_PAIRS_URL = (
    "https://raw.githubusercontent.com/nyu-mll/crows-pairs/"
    "8aaac11c485473159ec9328a65253a5be9a479dc/data/crows_pairs_anonymized.csv"
)
CROWS_PAIRS_SHA256 = "dfb36986ce0502abbaf7055b9176da3d08d48e07df1251991b5dfbcbceab9d0c"
CROWS_PAIRS_BYTES = 437_764
CROWS_PAIRS_COLUMNS = ("sent_more", "sent_less", "stereo_antistereo", "bias_type")

YELP_DATASET = "Yelp/yelp_review_full"
YELP_SIZES = {"train": 10_000, "test": 5_000}
YELP_NUM_CLASSES = 5


def _check_cached_brown(zipped: Path) -> None:
    """Raise :class:`CorruptFileError` if ``zipped`` exists but fails its CRC-32 checks."""
    if not zipped.is_file():
        return
    try:
        with zipfile.ZipFile(zipped) as archive:
            bad_member = archive.testzip()  # checks the CRC-32 of every file inside
    except zipfile.BadZipFile:
        bad_member = "the archive itself"
    if bad_member is not None:
        raise CorruptFileError(
            f"{zipped} is incomplete or corrupted ({bad_member} fails its checksum). "
            "Delete it and run again to download a fresh copy."
        )


def brown_corpus(data_dir: str | os.PathLike | None = None) -> CategorizedTaggedCorpusReader:
    """A reader of the Brown corpus, downloading ``brown.zip`` into the cache only if it is missing.

    Looked for on ``NLTK_DATA``, nltk's usual folders and ``<cache>/nltk_data``; when
    absent, ``brown.zip`` is downloaded (checksum-verified) to ``<cache>/nltk_data/corpora``.
    """
    import nltk
    from nltk.corpus.reader import CategorizedTaggedCorpusReader

    nltk_dir = cache_dir(data_dir) / "nltk_data"
    target = nltk_dir / "corpora" / "brown.zip"
    _check_cached_brown(target)
    # NLTK_DATA is read when nltk is imported; read it again in case it was set later.
    # (nltk.data.find opens zips only on nltk.data.path, so the folders are added there.)
    wanted = [p for p in os.environ.get("NLTK_DATA", "").split(os.pathsep) if p]
    for entry in [*wanted, str(nltk_dir)]:
        if entry not in nltk.data.path:
            nltk.data.path.append(entry)
    search = list(nltk.data.path)

    def find():
        # The same two places nltk.corpus.brown looks: an unzipped folder, then the zip.
        for resource in ("corpora/brown", "corpora/brown.zip/brown/"):
            try:
                return nltk.data.find(resource)
            except LookupError:
                continue
        return None

    root = find()
    if root is None:
        url = os.environ.get("COURSE_BROWN_URL") or BROWN_URL
        try:
            download(url, target, sha256=BROWN_SHA256, size=BROWN_BYTES, description="brown.zip")
        except (OSError, CorruptFileError) as error:
            raise unavailable(
                "the Brown corpus",
                [
                    f"nltk's data folders ({', '.join(search)}): no corpora/brown or brown.zip",
                    f"downloading {url} ({describe_error(error)})",
                ],
                f"download {url} and save it as {target} "
                "(or set NLTK_DATA to a folder holding corpora/brown.zip).",
            ) from None
        root = find()
    # A reader of the copy just found, built like nltk.corpus.brown (whose first use
    # would pin it to whatever copy it saw first, for the rest of the process).
    return CategorizedTaggedCorpusReader(
        root, r"c[a-z]\d\d", cat_file="cats.txt", tagset="brown", encoding="ascii"
    )


def brown_sentences(
    *,
    lowercase: bool = True,
    words_only: bool = True,
    data_dir: str | os.PathLike | None = None,
    fallback: bool = False,
) -> list[list[str]]:
    """All 57,340 sentences of the Brown corpus as lists of tokens.

    ``words_only`` drops tokens without a letter (punctuation, bare numbers). With
    ``fallback``, when Brown cannot be loaded a notice is printed and gensim's small
    Lee news corpus (which ships with gensim) is returned instead.
    """
    try:
        sentences = brown_token_sentences(data_dir)
    except DataUnavailable as error:
        if not fallback:
            raise
        print(
            "NOTICE: the Brown corpus is not available, so this notebook uses gensim's small "
            "Lee news corpus instead; its numbers will differ from the solution notebook.\n"
            f"Why, and how to get Brown back:\n{error}"
        )
        return lee_sentences()
    result = []
    for sentence in sentences:
        tokens = [t.lower() if lowercase else t for t in sentence]
        if words_only:
            tokens = [t for t in tokens if any(c.isalpha() for c in t)]
        result.append(tokens)
    return result


def brown_token_sentences(
    data_dir: str | os.PathLike | None = None, max_sentences: int | None = None
) -> list[list[str]]:
    """Brown's sentences as its raw tokens: the lists of ``brown_corpus().sents()``, read faster.

    nltk's reader parses every ``word/tag`` token into a pair and then drops the tag; here
    each line of a Brown file, which holds one sentence, is split on whitespace and each
    token cut at its last ``/``: the same words, about four times faster. A copy on
    ``NLTK_DATA`` or in the course cache (a ``corpora/brown`` folder before a
    ``corpora/brown.zip``, as nltk looks) is read without importing nltk, which alone
    takes about 2 s; anywhere else, :func:`brown_corpus` finds or downloads it.
    ``max_sentences`` stops early.
    """
    texts = _brown_texts_without_nltk(data_dir)
    if texts is None:
        corpus = brown_corpus(data_dir)
        texts = (corpus.raw(fileid) for fileid in corpus.fileids())
    sentences: list[list[str]] = []
    for raw in texts:
        sentences += brown_file_sentences(raw)
        if max_sentences is not None and len(sentences) >= max_sentences:
            return sentences[:max_sentences]
    return sentences


_BROWN_FILE = re.compile(r"c[a-z]\d\d")  # the reader's fileids: ca01 ... cr09


def _brown_texts_without_nltk(data_dir: str | os.PathLike | None) -> Iterator[str] | None:
    """The texts of Brown's files in nltk's order, if a copy is on NLTK_DATA or cached."""
    folders = [Path(p) for p in os.environ.get("NLTK_DATA", "").split(os.pathsep) if p]
    cached = cache_dir(data_dir) / "nltk_data"
    folders.append(cached)
    _check_cached_brown(cached / "corpora" / "brown.zip")
    for folder in folders:
        unzipped = folder / "corpora" / "brown"
        if unzipped.is_dir():
            names = sorted(p.name for p in unzipped.iterdir() if _BROWN_FILE.fullmatch(p.name))
            return (unzipped.joinpath(n).read_text(encoding="ascii") for n in names)
    for folder in folders:
        zipped = folder / "corpora" / "brown.zip"
        if zipped.is_file():
            return _zipped_brown_texts(zipped)
    return None


def _zipped_brown_texts(zipped: Path) -> Iterator[str]:
    with zipfile.ZipFile(zipped) as archive:
        names = sorted(
            name
            for name in archive.namelist()
            if name.startswith("brown/") and _BROWN_FILE.fullmatch(name[len("brown/") :])
        )
        for name in names:
            yield archive.read(name).decode("ascii")


def brown_file_sentences(raw: str) -> list[list[str]]:
    """The sentences of one Brown file's text: a line of ``word/tag`` tokens each."""
    sentences = []
    for line in raw.splitlines():
        tokens = [token.rsplit("/", 1)[0] for token in line.split()]
        if tokens:
            sentences.append(tokens)
    return sentences


def lee_sentences() -> list[list[str]]:
    """gensim's Lee background corpus (about 300 Australian news texts), lowercased words."""
    from gensim.test.utils import datapath
    from gensim.utils import simple_preprocess

    with open(datapath("lee_background.cor"), encoding="utf-8", errors="replace") as handle:
        return [simple_preprocess(line) for line in handle if line.strip()]


def _read_table(path: Path) -> pd.DataFrame:
    if path.suffix.lower() in {".parquet", ".pq"}:
        return pd.read_parquet(path)
    return pd.read_csv(path)


def _validate_yelp(frame: pd.DataFrame, source: Path | str) -> pd.DataFrame:
    missing = [c for c in ("label", "text") if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{source} must have the columns 'label' (0–4, stars − 1) and 'text'; "
            f"it is missing {missing} (its columns are {list(frame.columns)})."
        )
    labels = pd.to_numeric(frame["label"], errors="coerce")
    bad = labels.isna() | (labels % 1 != 0) | (labels < 0) | (labels >= YELP_NUM_CLASSES)
    if bad.any():
        found = sorted(set(frame.loc[bad, "label"].tolist()))[:5]
        stars = " (stars 1–5? subtract 1)" if set(labels.dropna()) <= {1, 2, 3, 4, 5} else ""
        raise ValueError(
            f"{source}: every label must be an integer from 0 to 4{stars}; "
            f"{int(bad.sum())} rows are not, e.g. {found}."
        )
    if frame["text"].isna().any():
        raise ValueError(f"{source}: {int(frame['text'].isna().sum())} rows have no text.")
    return pd.DataFrame(
        {"label": labels.astype("int64").to_numpy(), "text": frame["text"].astype(str).to_numpy()}
    )


def _balanced_subset(labels, size: int, seed: int):
    """Row indices of a seeded sample with (nearly) equal counts per label, shuffled."""
    import numpy as np

    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    chosen = []
    for label in range(YELP_NUM_CLASSES):
        want = size // YELP_NUM_CLASSES + (label < size % YELP_NUM_CLASSES)
        rows = np.flatnonzero(labels == label)
        if len(rows) < want:
            raise ValueError(f"only {len(rows)} reviews have label {label}; {want} were asked for")
        chosen.append(rng.choice(rows, size=want, replace=False))
    return rng.permutation(np.concatenate(chosen))


def _hub_yelp(split: str):
    """The full Yelp split from the Hugging Face hub (650,000 train or 50,000 test reviews)."""
    if offline():
        raise OSError("skipped: COURSE_OFFLINE is set")
    reason = hub_unreachable()  # fails within the timeout, where datasets would retry
    if reason is not None:
        raise OSError(reason)
    import datasets

    # Downloaded once into Hugging Face's own cache; the course keeps only a small sample.
    with hub_timeouts():
        return datasets.load_dataset(YELP_DATASET, split=split)


def load_yelp(
    split: str = "train",
    *,
    path: str | os.PathLike | None = None,
    size: int | None = None,
    seed: int = 0,
    data_dir: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """Yelp reviews as a DataFrame with columns ``label`` (0–4, stars − 1) and ``text``.

    Online, a seeded class-balanced sample of ``Yelp/yelp_review_full`` (``size``
    reviews: 10,000 for train and 5,000 for test by default) is cached as parquet.
    A local CSV or parquet file (``path``, ``COURSE_YELP_TRAIN``/``COURSE_YELP_TEST``,
    or ``<cache>/yelp/<split>.csv``) is used as it is, or sampled down to ``size``.
    """
    if split not in YELP_SIZES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if size is not None and size < 1:
        raise ValueError(f"size must be a positive number of reviews, got {size}")
    variable = f"COURSE_YELP_{split.upper()}"
    yelp_dir = cache_dir(data_dir) / "yelp"
    local = Path(path) if path is not None else env_file(variable, f"the Yelp {split} reviews")
    if local is None:
        local = next(
            (p for p in (yelp_dir / f"{split}.csv", yelp_dir / f"{split}.parquet") if p.is_file()),
            None,
        )
    if local is not None:
        frame = _validate_yelp(_read_table(local), local)
        if size is not None and size < len(frame):
            frame = frame.sample(n=size, random_state=seed).reset_index(drop=True)
        return frame

    wanted = YELP_SIZES[split] if size is None else size
    cached = yelp_dir / f"yelp_review_full-{split}-{wanted}-seed{seed}.parquet"
    if cached.is_file():
        return pd.read_parquet(verify_file(cached, sha256=recorded_sha256(cached)))
    try:
        full = _hub_yelp(split)
    except Exception as error:  # datasets raises many kinds; the message below says what to do
        raise unavailable(
            f"the Yelp {split} reviews",
            [
                "the path argument (not given)",
                f"{variable} (not set)",
                f"{yelp_dir / (split + '.csv')} and .parquet (absent)",
                f"the cached sample {cached} (absent)",
                f"Hugging Face datasets {YELP_DATASET!r} ({describe_error(error)})",
            ],
            f"save a CSV file with columns label (0–4, stars − 1) and text as "
            f"{yelp_dir / (split + '.csv')}, or set {variable} to the path of such a file.",
        ) from None
    # The Arrow column directly: converting 650,000 labels through Python takes seconds.
    labels = full.with_format("arrow")["label"].to_numpy()
    subset = full.select(_balanced_subset(labels, wanted, seed).tolist())
    frame = subset.to_pandas()[["label", "text"]].astype({"label": "int64"})
    write_with_checksum(cached, lambda temporary: frame.to_parquet(temporary, index=False))
    return frame


def _read_crows_pairs(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path, index_col=0)
    missing = [c for c in CROWS_PAIRS_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{path} is not the CrowS-Pairs CSV: it lacks the columns {missing} "
            f"(its columns are {list(frame.columns)})."
        )
    return frame


def load_crows_pairs(
    path: str | os.PathLike | None = None, *, data_dir: str | os.PathLike | None = None
) -> pd.DataFrame:
    """The 1,508 CrowS-Pairs sentence pairs (``sent_more``, ``sent_less``, ``bias_type`` ...).

    From ``path``, else ``COURSE_CROWS_PAIRS``, else the cache (checksum-verified),
    else downloaded from ``COURSE_CROWS_PAIRS_URL`` or the authors' repository.
    """
    local = Path(path) if path is not None else env_file("COURSE_CROWS_PAIRS", "CrowS-Pairs")
    if local is not None:
        return _read_crows_pairs(local)
    cached = cache_dir(data_dir) / "crows_pairs" / "crows_pairs_anonymized.csv"
    if cached.is_file():
        verify_file(cached, sha256=CROWS_PAIRS_SHA256, size=CROWS_PAIRS_BYTES)
        return _read_crows_pairs(cached)
    url = os.environ.get("COURSE_CROWS_PAIRS_URL") or CROWS_PAIRS_URL
    try:
        download(url, cached, sha256=CROWS_PAIRS_SHA256, size=CROWS_PAIRS_BYTES)
    except (OSError, CorruptFileError) as error:
        raise unavailable(
            "CrowS-Pairs",
            [
                "the path argument (not given)",
                "COURSE_CROWS_PAIRS (not set)",
                f"the cache file {cached} (absent)",
                f"downloading {url} ({describe_error(error)})",
            ],
            f"download {url} and save it as {cached}, "
            "or set COURSE_CROWS_PAIRS to the path of that file.",
        ) from None
    return _read_crows_pairs(cached)
