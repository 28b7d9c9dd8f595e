"""Tiny data sets in the real formats, made from scratch, for test runs without ../shared/data.

Each writer is deterministic (a seeded ``random.Random``), so every run gets the same
bytes. The words and row numbers are the ones the lessons use: lesson 01 looks up *bank*,
*money*, *river*, *loan*, *shore* ... in a Word2Vec model (words seen at least 5 times),
lesson 06 trains on all five Yelp labels, and lesson 07 prints CrowS-Pairs rows 2, 22
and 114 and scores a sample of 50 pairs.
"""

from __future__ import annotations

import os
import random
import zipfile
from pathlib import Path

import pandas as pd

__all__ = [
    "BROWN_TOPICS",
    "CROWS_PAIRS_BIAS_TYPES",
    "tiny_bert_repo",
    "write_brown_zip",
    "write_crows_pairs_csv",
    "write_data",
    "write_yelp_csv",
    "yelp_hub_repo",
]

# Each topic's words appear only beside one another, so Word2Vec groups them as Brown does.
BROWN_TOPICS = {
    "money": "money bank loan tax price dollars cost pay income cash credit".split(),
    "water": "river water lake sea boat shore valley hills bank".split(),
    "family": "mother father son daughter wife husband brother".split(),
    "court": "king queen prince castle crown knight".split(),
}
_BROWN_TEMPLATES = [
    "the {0} and the {1} were close to the {2}",
    "his {0} said that the {1} was more than the {2}",
    "she saw the {0} , the {1} and a {2}",
    "there was no {0} without the {1} in those days",
    "a {0} is not a {1} , nor is it a {2}",
    "they talked about the {0} and the {1} all night",
]
# Made-up words around the topic words: enough different spellings for the word-piece
# vocabularies the lessons train (a few hundred pieces from the first 400 sentences).
_SYLLABLES = "ba ce di fo gu ha ke li mo nu pa re si to vu wa ye zo".split()
_FILLERS = sorted(
    {a + b + c for a in _SYLLABLES for b in _SYLLABLES for c in ("", "n", "r", "st")}
)[::3]
_BROWN_SENTENCES_PER_FILE = 100
_BROWN_FILES = ("ca01", "ca02", "cb01", "cb02", "cc01", "cc02", "cd01", "cd02")
_BROWN_CATEGORIES = {"a": "news", "b": "editorial", "c": "reviews", "d": "religion"}


def write_brown_zip(path: str | os.PathLike) -> Path:
    """A ``brown.zip`` in nltk's layout (``brown/cats.txt``, ``brown/ca01`` ...), 800 sentences."""
    rng = random.Random(0)
    topics = list(BROWN_TOPICS.values())
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("brown/", "")
        archive.writestr(
            "brown/cats.txt",
            "".join(f"{name} {_BROWN_CATEGORIES[name[1]]}\n" for name in _BROWN_FILES),
        )
        for name in _BROWN_FILES:
            sentences = []
            for _ in range(_BROWN_SENTENCES_PER_FILE):
                words = rng.sample(rng.choice(topics), 3)
                text = rng.choice(_BROWN_TEMPLATES).format(*words)
                text += " " + " ".join(rng.sample(_FILLERS, 3))
                text = text[0].upper() + text[1:]
                tagged = " ".join(f"{w}/{'nn' if w.isalpha() else w}" for w in text.split())
                sentences.append(f"\n\n\t{tagged} ./.")
            archive.writestr(f"brown/{name}", "".join(sentences) + "\n")
    return path


_YELP_WORDS = {
    0: "awful rude cold terrible dirty never",
    1: "slow bland disappointing noisy overpriced",
    2: "okay average decent fine ordinary",
    3: "good friendly tasty pleasant fresh",
    4: "excellent amazing perfect wonderful delicious",
}


def write_yelp_csv(path: str | os.PathLike, rows: int, seed: int = 0) -> Path:
    """A Yelp split as the course reads it: columns ``label`` (0–4, balanced) and ``text``."""
    rng = random.Random(seed)
    labels = [i % 5 for i in range(rows)]
    rng.shuffle(labels)
    texts = []
    for label in labels:
        words = _YELP_WORDS[label].split()
        first = f"The food was {rng.choice(words)} and the service was {rng.choice(words)}."
        second = f"We ate pasta, soup and bread; {rng.choice(words)} overall."
        texts.append(first + ("\n" if rng.random() < 0.3 else " ") + second)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"label": labels, "text": texts}).to_csv(path, index=False)
    return path


# Neutral sentences that differ in one word, one pair of words per bias type of the real set.
CROWS_PAIRS_BIAS_TYPES = {
    "race-color": ("black", "white"),
    "gender": ("he", "she"),
    "socioeconomic": ("poor", "rich"),
    "nationality": ("French", "Canadian"),
    "religion": ("Christian", "Buddhist"),
    "age": ("old", "young"),
    "sexual-orientation": ("gay", "straight"),
    "physical-appearance": ("tall", "short"),
    "disability": ("blind", "deaf"),
}
_CROWS_TEMPLATES = [
    "The {} neighbour planted a garden by the river.",
    "My {} friend paid for the boat with cash.",
    "A {} student read the news about the bank.",
    "The {} driver waited near the lake for an hour.",
]
_CROWS_PRONOUN_TEMPLATES = [
    "{} planted a garden by the river.",
    "{} paid for the boat with cash.",
    "{} read the news about the bank.",
    "{} waited near the lake for an hour.",
]


def write_crows_pairs_csv(path: str | os.PathLike, rows: int = 120) -> Path:
    """A CrowS-Pairs CSV with the real columns and index, every bias type in both directions."""
    types = list(CROWS_PAIRS_BIAS_TYPES)
    records = []
    for row in range(rows):
        bias_type = types[row % len(types)]
        first, second = CROWS_PAIRS_BIAS_TYPES[bias_type]
        templates = _CROWS_PRONOUN_TEMPLATES if bias_type == "gender" else _CROWS_TEMPLATES
        template = templates[(row // len(types)) % len(templates)]
        more, less = template.format(first), template.format(second)
        records.append(
            {
                "sent_more": more[0].upper() + more[1:],
                "sent_less": less[0].upper() + less[1:],
                "stereo_antistereo": "antistereo" if row % 4 == 3 else "stereo",
                "bias_type": bias_type,
                "annotations": str([[bias_type]] * 5),
                "anon_writer": f"a{row % 7}",
                "anon_annotators": str([f"a{row % 5 + k}" for k in range(5)]),
            }
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(records).to_csv(path)
    return path


def write_data(folder: str | os.PathLike) -> dict[str, str]:
    """Write every fixture into ``folder``; return the environment variables that point at them."""
    folder = Path(folder)
    write_brown_zip(folder / "nltk_data" / "corpora" / "brown.zip")
    return {
        "NLTK_DATA": str(folder / "nltk_data"),
        "COURSE_YELP_TRAIN": str(write_yelp_csv(folder / "yelp" / "train.csv", 500, seed=0)),
        "COURSE_YELP_TEST": str(write_yelp_csv(folder / "yelp" / "test.csv", 250, seed=1)),
        "COURSE_CROWS_PAIRS": str(write_crows_pairs_csv(folder / "crows_pairs" / "pairs.csv")),
    }


YELP_LABEL_NAMES = ["1 star", "2 star", "3 stars", "4 stars", "5 stars"]
_YELP_README = """---
language:
- en
license: other
task_categories:
- text-classification
pretty_name: YelpReviewFull
dataset_info:
  config_name: yelp_review_full
  features:
  - name: label
    dtype:
      class_label:
        names:
          '0': 1 star
          '1': 2 star
          '2': 3 stars
          '3': 4 stars
          '4': 5 stars
  - name: text
    dtype: string
  splits:
  - name: train
    num_bytes: {train_bytes}
    num_examples: {train_rows}
  - name: test
    num_bytes: {test_bytes}
    num_examples: {test_rows}
configs:
- config_name: yelp_review_full
  data_files:
  - split: train
    path: yelp_review_full/train-*
  - split: test
    path: yelp_review_full/test-*
  default: true
---

# Dataset Card for YelpReviewFull (a tiny stand-in written by the course's tests)
"""


def yelp_hub_repo(folder: str | os.PathLike, train_rows: int = 500, test_rows: int = 250) -> Path:
    """``Yelp/yelp_review_full`` as the hub holds it: README.md (YAML) and one parquet per split."""
    import datasets

    folder = Path(folder)
    features = datasets.Features(
        {"label": datasets.ClassLabel(names=YELP_LABEL_NAMES), "text": datasets.Value("string")}
    )
    sizes = {}
    for split, rows, seed in (("train", train_rows, 0), ("test", test_rows, 1)):
        frame = pd.read_csv(write_yelp_csv(folder / f"{split}.csv", rows, seed))
        (folder / f"{split}.csv").unlink()
        target = folder / "yelp_review_full" / f"{split}-00000-of-00001.parquet"
        target.parent.mkdir(parents=True, exist_ok=True)
        datasets.Dataset.from_pandas(frame, features=features).to_parquet(target)
        sizes[f"{split}_rows"] = rows
        sizes[f"{split}_bytes"] = int(frame["text"].str.len().sum())
    (folder / "README.md").write_text(_YELP_README.format(**sizes), encoding="utf-8")
    return folder


def tiny_bert_repo(folder: str | os.PathLike) -> Path:
    """A two-layer random BERT and its WordPiece tokenizer, written by ``save_pretrained``."""
    from transformers import BertConfig, BertForMaskedLM, BertTokenizerFast

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    words = "[PAD] [UNK] [CLS] [SEP] [MASK] the a he she is was nurse doctor river bank ."
    (folder / "vocab.txt").write_text("\n".join(words.split()) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast(vocab_file=str(folder / "vocab.txt"))
    config = BertConfig(
        vocab_size=len(words.split()),
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
    )
    import torch

    torch.manual_seed(0)
    BertForMaskedLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
