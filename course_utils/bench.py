"""Benchmarks that print one JSON line, for the course's closing notes and for CI.

    python -m course_utils.bench yelp --train FILE --test FILE
    python -m course_utils.bench crows-pairs --model NAME_OR_DIR --data FILE

``yelp`` trains the lesson-06 transformer (the CPU defaults, or the GPU ones on a GPU) and
the TF-IDF + logistic-regression baseline on the same split, and prints their scores.
``crows-pairs`` scores a masked language model on CrowS-Pairs (lesson 07). Each
benchmark is a subcommand: a function that adds its arguments and a function that runs it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import replace

__all__ = ["SUBCOMMANDS", "main", "run_crows_pairs", "run_yelp"]


# Yelp reviews (lesson 06) ---------------------------------------------------------------


def _add_yelp_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--train", help="CSV or parquet with label (0-4) and text columns")
    parser.add_argument("--test", help="the test split, same columns")
    parser.add_argument("--epochs", type=int, help="override the recipe's number of epochs")
    parser.add_argument("--train-size", type=int, help="use only this many training reviews")
    parser.add_argument("--test-size", type=int, help="use only this many test reviews")
    parser.add_argument("--seed", type=int, help="override the recipe's seed")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--quick", action="store_true", help="smoke-test sizes (seconds)")
    parser.add_argument("--device", help="cpu, cuda, ... (default: the best available)")


def run_yelp(args: argparse.Namespace) -> dict:
    """Train the transformer and the baseline on the same Yelp split; return their scores."""
    import torch

    from course_utils.classifier import build_classifier, count_parameters
    from course_utils.classifier_metrics import (
        classification_scores,
        majority_baseline,
        tfidf_baseline,
    )
    from course_utils.classifier_tokenizer import encode_reviews, train_tokenizer
    from course_utils.classifier_training import default_recipe, train_classifier
    from course_utils.data import load_yelp

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device) if args.device else _best_device()
    recipe = default_recipe(device, quick=args.quick)
    if args.epochs is not None:
        recipe = replace(recipe, epochs=args.epochs)
    if args.seed is not None:
        recipe = replace(recipe, seed=args.seed)
    train = load_yelp("train", path=args.train, size=args.train_size)
    test = load_yelp("test", path=args.test, size=args.test_size)

    tokenizer = train_tokenizer(train["text"], recipe.vocab_size)
    cls = recipe.pooling == "cls"
    train_ids = encode_reviews(tokenizer, train["text"], recipe.max_len, cls=cls)
    test_ids = encode_reviews(tokenizer, test["text"], recipe.max_len, cls=cls)
    torch.manual_seed(recipe.seed)
    model = build_classifier(
        tokenizer.get_vocab_size(), train["label"], recipe.max_len, **recipe.model_sizes()
    )
    history = train_classifier(
        model,
        (train_ids, train["label"].tolist()),
        (test_ids, test["label"].tolist()),
        recipe,
        device,
        progress=False,
    )
    ours = classification_scores(test["label"], history.predictions)
    baseline = tfidf_baseline(train["text"], train["label"], test["text"], seed=recipe.seed)
    theirs = classification_scores(test["label"], baseline.predictions)
    majority = majority_baseline(train["label"], len(test))
    return {
        "benchmark": "yelp",
        "train_reviews": len(train),
        "test_reviews": len(test),
        "transformer_accuracy": round(ours["accuracy"], 4),
        "baseline_accuracy": round(theirs["accuracy"], 4),
        "majority_accuracy": round(
            classification_scores(test["label"], majority.predictions)["accuracy"], 4
        ),
        "transformer_macro_f1": round(ours["macro_f1"], 4),
        "baseline_macro_f1": round(theirs["macro_f1"], 4),
        "transformer_within_one": round(ours["within_one"], 4),
        "baseline_within_one": round(theirs["within_one"], 4),
        "transformer_accuracy_per_epoch": [round(a, 4) for a in history.test_accuracy],
        "train_seconds": round(history.seconds, 1),
        "baseline_seconds": round(baseline.seconds, 1),
        "parameters": count_parameters(model),
        "epochs": recipe.epochs,
        "seed": recipe.seed,
        "device": str(device),
        "threads": torch.get_num_threads(),
    }


def _best_device():
    from course_utils.device import get_device

    return get_device(verbose=False)


# CrowS-Pairs (lesson 07) ----------------------------------------------------------------


def _add_crows_pairs_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", required=True, help="a hub name (bert-base-uncased) or a save_pretrained folder"
    )
    parser.add_argument("--data", help="the CrowS-Pairs CSV (default: COURSE_CROWS_PAIRS or cache)")
    parser.add_argument("--sample", type=int, help="score only this many pairs (drawn with seed 0)")
    parser.add_argument("--batch-size", type=int, default=128, help="masked copies per batch")
    parser.add_argument("--seed", type=int, help="override the recipe's seed")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--device", help="cpu, cuda, ... (default: the best available)")


def run_crows_pairs(args: argparse.Namespace) -> dict:
    """Score a masked LM on CrowS-Pairs; return the metric overall and per bias type."""
    import time

    import torch

    from course_utils.crows_pairs import crows_pairs_metric, crows_pairs_scores
    from course_utils.data import load_crows_pairs
    from course_utils.pretrained import load_masked_lm

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device) if args.device else _best_device()
    pairs = load_crows_pairs(args.data)
    if args.sample is not None:
        pairs = pairs.sample(n=min(args.sample, len(pairs)), random_state=0)
    tokenizer, model = load_masked_lm(args.model, device=device)
    start = time.perf_counter()
    scores = crows_pairs_scores(model, tokenizer, pairs, batch_size=args.batch_size, progress=False)
    seconds = time.perf_counter() - start
    return {
        "benchmark": "crows-pairs",
        "model": args.model,
        **crows_pairs_metric(scores).as_dict(),
        "seconds": round(seconds, 1),
        "device": str(device),
        "threads": torch.get_num_threads(),
    }


# The command line ------------------------------------------------------------------------

# name: (help, add its arguments, run it and return a JSON-able dict)
SUBCOMMANDS: dict[str, tuple[str, Callable, Callable]] = {
    "yelp": ("lesson 06: transformer vs TF-IDF baseline on Yelp", _add_yelp_arguments, run_yelp),
    "crows-pairs": (
        "lesson 07: CrowS-Pairs bias score of a masked LM",
        _add_crows_pairs_arguments,
        run_crows_pairs,
    ),
}


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, run one benchmark, print its result as one JSON line."""
    parser = argparse.ArgumentParser(prog="python -m course_utils.bench", description=__doc__)
    subparsers = parser.add_subparsers(dest="benchmark", required=True)
    for name, (help_text, add_arguments, _) in SUBCOMMANDS.items():
        add_arguments(subparsers.add_parser(name, help=help_text))
    args = parser.parse_args(argv)
    result = SUBCOMMANDS[args.benchmark][2](args)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
