"""Benchmarks that print one JSON line, for the course's closing notes and for CI.

    python -m course_utils.bench yelp --train FILE --test FILE --seeds 3
    python -m course_utils.bench yelp-step
    python -m course_utils.bench crows-pairs --model NAME_OR_DIR --data FILE

``yelp`` pretrains and fine-tunes the lesson-06 transformer for each seed (learning from
the labels and from the class-balanced baseline's probabilities, cross-fitted on the
training reviews and also for ``distill_reviews`` unlabelled ones, as the recipe says;
``--set teacher_weight=0`` for the labels alone), fits the TF-IDF +
logistic-regression baselines (plain and class-balanced) on the same split, and prints
their test scores. ``yelp-step`` times a training step of the classifier built from
the learner's recorded parts against the reference one.
``crows-pairs`` scores a masked language model on CrowS-Pairs (lesson 07). Each
benchmark is a subcommand: a function that adds its arguments and a function that runs it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from dataclasses import asdict, replace
from functools import partial
from typing import Literal, TypedDict

__all__ = ["SUBCOMMANDS", "main", "run_crows_pairs", "run_yelp", "run_yelp_step"]


# Yelp reviews (lesson 06) ---------------------------------------------------------------


def _add_yelp_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--train", help="CSV or parquet with label (0-4) and text columns")
    parser.add_argument("--valid", help="a validation split (default: 10%% of --train, stratified)")
    parser.add_argument("--test", help="the test split, scored once per seed at the end")
    parser.add_argument(
        "--unlabelled",
        help=f"reviews to pretrain on besides the training texts: files separated by "
        f"{os.pathsep!r} (default: COURSE_YELP_UNLABELLED, see classifier_data)",
    )
    parser.add_argument("--seeds", type=int, default=1, help="train this many seeds: 0, 1, ...")
    parser.add_argument(
        "--jobs", type=int, default=1, help="train this many seeds at once (one thread each)"
    )
    parser.add_argument("--epochs", type=int, help="override the recipe's number of epochs")
    parser.add_argument("--pretrain-steps", type=int, help="override the recipe's pretraining")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override any Recipe field, e.g. --set class_weight=balanced --set lr=1e-3 "
        "(repeatable; the value is read as JSON, else taken as a string)",
    )
    parser.add_argument("--train-size", type=int, help="use only this many training reviews")
    parser.add_argument("--test-size", type=int, help="use only this many test reviews")
    parser.add_argument(
        "--parts",
        choices=("reference", "yours"),
        default="reference",
        help="build the model from the course's parts or from the recorded learner's parts",
    )
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--quick", action="store_true", help="smoke-test sizes (seconds)")
    parser.add_argument("--device", help="cpu, cuda, ... (default: the best available)")


def _mean_sd(values: list[float]) -> dict:
    import statistics

    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": round(statistics.fmean(values), 4), "sd": round(sd, 4)}


def _recipe_overrides(settings: list[str], recipe) -> dict:
    """``["lr=1e-3", "class_weight=balanced"]`` as keyword arguments for ``replace(recipe)``."""
    from dataclasses import fields

    known = {f.name for f in fields(recipe)}
    overrides = {}
    for setting in settings:
        name, equals, text = setting.partition("=")
        if not equals or name not in known:
            raise ValueError(
                f"--set takes FIELD=VALUE with FIELD one of {sorted(known)}; got {setting!r}"
            )
        try:
            overrides[name] = json.loads(text)
        except json.JSONDecodeError:
            overrides[name] = text
    return overrides


def _yelp_splits(args: argparse.Namespace):
    from course_utils.classifier_data import split_off_validation
    from course_utils.data import load_yelp

    train = load_yelp("train", path=args.train, size=args.train_size)
    test = load_yelp("test", path=args.test, size=args.test_size)
    if args.valid:
        valid = load_yelp("train", path=args.valid)
    else:
        train, valid = split_off_validation(train)
    return train, valid, test


def _yelp_seed(
    seed: int,
    *,
    recipe,
    vocab_size: int,
    mask_id: int,
    encoded: dict,
    labels: dict,
    chunks: list,
    teacher,
    unlabelled,
    parts: Literal["reference", "yours"],
    device: str,
    threads: int | None,
) -> dict:
    """Pretrain, fine-tune and test one seed of the lesson-06 transformer; return its figures."""
    import time

    import torch

    from course_utils.classifier import build_classifier, count_parameters
    from course_utils.classifier_metrics import classification_scores
    from course_utils.classifier_pretraining import pretrain_encoder
    from course_utils.classifier_training import evaluate, train_classifier

    if threads is not None:
        torch.set_num_threads(threads)
    seeded = replace(recipe, seed=seed)
    torch.manual_seed(seed)
    model = build_classifier(
        vocab_size,
        labels["train"],
        max(recipe.max_len, recipe.pretrain_len),
        parts=parts,
        **seeded.model_sizes(),
    )
    cpu_start = time.process_time()
    pretrain_seconds = 0.0
    if seeded.pretrain_steps > 0 or seeded.word2vec_epochs > 0:
        pretrain_seconds = pretrain_encoder(
            model,
            chunks,
            seeded.pretrain_settings(),
            mask_id=mask_id,
            device=device,
            progress=False,
        ).seconds
    history = train_classifier(
        model,
        (encoded["train"], labels["train"]),
        (encoded["valid"], labels["valid"]),
        seeded,
        device,
        teacher=teacher,
        unlabelled=unlabelled,
        progress=False,
    )
    cpu_seconds = time.process_time() - cpu_start
    _, predictions = evaluate(model, encoded["test"], labels["test"], device)
    scores = classification_scores(labels["test"], predictions)
    return {
        "seed": seed,
        "test_accuracy": round(scores["accuracy"], 4),
        "test_macro_f1": round(scores["macro_f1"], 4),
        "valid_accuracy_per_epoch": [round(a, 4) for a in history.valid_accuracy],
        "pretrain_seconds": round(pretrain_seconds, 1),
        "finetune_seconds": round(history.seconds, 1),
        "train_cpu_seconds": round(cpu_seconds, 1),
        "threads": torch.get_num_threads(),
        "parameters": count_parameters(model),
    }


def run_yelp(args: argparse.Namespace) -> dict:
    """Pretrain and fine-tune the transformer for each seed; score it and both baselines on test.

    Every choice was made on validation; the test reviews are scored once per seed, after
    training. The baselines are TF-IDF + logistic regression, plain and class-balanced.
    """
    import time

    import torch

    from course_utils.classifier_data import reviews_to_distil, unlabelled_reviews
    from course_utils.classifier_metrics import (
        class_probabilities,
        classification_scores,
        cross_fitted_probabilities,
        majority_baseline,
        tfidf_baseline,
    )
    from course_utils.classifier_pretraining import mask_token_id, windows
    from course_utils.classifier_tokenizer import encode_reviews, train_tokenizer
    from course_utils.classifier_training import default_recipe

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.unlabelled is not None:
        os.environ["COURSE_YELP_UNLABELLED"] = args.unlabelled
    device = torch.device(args.device) if args.device else _best_device()
    recipe = default_recipe(device, quick=args.quick or None)
    if args.epochs is not None:
        recipe = replace(recipe, epochs=args.epochs)
    if args.pretrain_steps is not None:
        recipe = replace(recipe, pretrain_steps=args.pretrain_steps)
    recipe = replace(recipe, **_recipe_overrides(args.set, recipe))
    train, valid, test = _yelp_splits(args)
    exclude = [*valid["text"], *test["text"]]
    corpus = unlabelled_reviews(train["text"], exclude)

    start = time.perf_counter()
    tokenizer = train_tokenizer(corpus, recipe.vocab_size)
    tokenizer_seconds = time.perf_counter() - start
    cls = recipe.pooling == "cls"
    splits = {"train": train, "valid": valid, "test": test}
    encoded = {
        name: encode_reviews(tokenizer, frame["text"], recipe.max_len, cls=cls)
        for name, frame in splits.items()
    }
    chunks = windows((e.ids for e in tokenizer.encode_batch(corpus)), recipe.pretrain_len)
    baselines, fitted_baselines = {}, {}
    for name, weights in (("tfidf", None), ("tfidf_balanced", "balanced")):
        fitted = tfidf_baseline(train["text"], train["label"], test["text"], class_weight=weights)
        fitted_baselines[name] = fitted
        baselines[name] = {
            key: round(value, 4)
            for key, value in classification_scores(test["label"], fitted.predictions).items()
        }
        baselines[name]["seconds"] = round(fitted.seconds, 1)
    teacher, unlabelled, teacher_report = None, None, None
    if recipe.teacher_weight > 0:  # the class-balanced bag of words, cross-fitted on train
        start = time.perf_counter()
        teacher = cross_fitted_probabilities(train["text"], train["label"])
        distil = reviews_to_distil(corpus, train["text"], recipe.distill_reviews)
        if distil:  # reviews the teacher (fitted on all of train) never saw
            num_classes = teacher.shape[1]
            unlabelled = (
                encode_reviews(tokenizer, distil, recipe.max_len, cls=cls),
                class_probabilities(fitted_baselines["tfidf_balanced"].model, distil, num_classes),
            )
        teacher_report = {
            "model": "TF-IDF + logistic regression, balanced, 5-fold cross-fitted on train",
            "weight": recipe.teacher_weight,
            "cross_fitted_train_accuracy": round(
                float((teacher.argmax(axis=1) == train["label"].to_numpy()).mean()), 4
            ),
            "unlabelled_reviews": len(distil),
            "seconds": round(time.perf_counter() - start, 1),
        }
    job = partial(
        _yelp_seed,
        recipe=recipe,
        vocab_size=tokenizer.get_vocab_size(),
        mask_id=mask_token_id(tokenizer),
        encoded=encoded,
        labels={name: frame["label"].tolist() for name, frame in splits.items()},
        chunks=chunks,
        teacher=teacher,
        unlabelled=unlabelled,
        parts=args.parts,
        device=str(device),
        threads=args.threads,
    )
    if args.jobs > 1:  # seeds are independent: one process each, one thread per process
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        job = partial(job, threads=1)
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(min(args.jobs, args.seeds), mp_context=context) as pool:
            runs = list(pool.map(job, range(args.seeds)))
    else:
        runs = [job(seed) for seed in range(args.seeds)]
    parameters = runs[0].pop("parameters")
    for run in runs[1:]:
        run.pop("parameters")
    majority = majority_baseline(train["label"], len(test))
    accuracy = _mean_sd([run["test_accuracy"] for run in runs])
    strongest = max(baseline["accuracy"] for baseline in baselines.values())
    return {
        "benchmark": "yelp",
        "parts": args.parts,
        "train_reviews": len(train),
        "valid_reviews": len(valid),
        "test_reviews": len(test),
        "pretrain_reviews": len(corpus),
        "pretrain_windows": len(chunks),
        "transformer_accuracy": accuracy,
        "transformer_macro_f1": _mean_sd([run["test_macro_f1"] for run in runs]),
        "stronger_baseline_accuracy": strongest,
        "margin_over_stronger_baseline": round(accuracy["mean"] - strongest, 4),
        "baselines": baselines,
        "majority_accuracy": round(
            classification_scores(test["label"], majority.predictions)["accuracy"], 4
        ),
        "teacher": teacher_report,
        "runs": runs,
        "train_seconds_per_seed": _mean_sd(
            [run["pretrain_seconds"] + run["finetune_seconds"] for run in runs]
        ),
        "tokenizer_seconds": round(tokenizer_seconds, 1),
        "parameters": parameters,
        "recipe": asdict(recipe),
        "device": str(device),
        "threads": torch.get_num_threads(),
    }


def _add_yelp_step_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--steps", type=int, default=30, help="timed steps per model")
    parser.add_argument("--seq", type=int, help="tokens per review (default: recipe.max_len)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--device", help="cpu, cuda, ... (default: the best available)")


def run_yelp_step(args: argparse.Namespace) -> dict:
    """Time one fine-tuning step of the classifier built from the learner's parts and the reference.

    Both models have the recipe's sizes and start from the same weights; their steps
    alternate, so a change of load on a shared machine hits both alike. The learner's parts
    are the recorded ones (see :mod:`course_utils.parts`); ``parts_used`` says whose each is.
    """
    import statistics
    import time

    import torch

    from course_utils import parts
    from course_utils.classifier import build_classifier
    from course_utils.classifier_training import default_recipe

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device) if args.device else _best_device()
    recipe = default_recipe(device)
    seq = args.seq or recipe.max_len
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(4, recipe.vocab_size, (recipe.batch_size, seq), generator=generator)
    labels = torch.randint(0, 5, (recipe.batch_size,), generator=generator)
    ids, labels = ids.to(device), labels.to(device)
    models, optimizers = {}, {}
    for source in ("yours", "reference"):
        torch.manual_seed(0)
        model = build_classifier(
            recipe.vocab_size, range(5), seq, parts=source, **recipe.model_sizes()
        )
        models[source] = model.to(device).train()
        optimizers[source] = torch.optim.AdamW(model.parameters(), lr=recipe.lr)
    seconds: dict[str, list[float]] = {source: [] for source in models}
    for step in range(args.steps + 3):  # three untimed warm-up steps each
        for source, model in models.items():
            start = time.perf_counter()
            loss = torch.nn.functional.cross_entropy(model(ids), labels)
            optimizers[source].zero_grad()
            loss.backward()
            optimizers[source].step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            if step >= 3:
                seconds[source].append(time.perf_counter() - start)
    median = {source: statistics.median(values) for source, values in seconds.items()}
    return {
        "benchmark": "yelp-step",
        "parts_used": {name: parts.get(name).origin for name in parts.PARTS},
        "batch": recipe.batch_size,
        "seq": seq,
        "steps": args.steps,
        "yours_ms_median": round(1000 * median["yours"], 2),
        "reference_ms_median": round(1000 * median["reference"], 2),
        "ratio_yours_to_reference": round(median["yours"] / median["reference"], 3),
        "device": str(device),
        "threads": torch.get_num_threads(),
    }


def _best_device():
    from course_utils.device import get_device

    return get_device(verbose=False)


# CrowS-Pairs (lesson 07) ----------------------------------------------------------------


class _Sizes(TypedDict):
    """The size arguments of a :class:`~course_utils.mlm.MaskedLanguageModel`."""

    d_model: int
    num_heads: int
    num_layers: int
    d_ff: int


# Model sizes for --random-size: a randomly initialised model times the scoring offline.
RANDOM_SIZES: dict[str, _Sizes] = {
    "bert-base": {"d_model": 768, "num_heads": 12, "num_layers": 12, "d_ff": 3072},
    "bert-small": {"d_model": 512, "num_heads": 8, "num_layers": 4, "d_ff": 2048},
}
BERT_VOCAB_SIZE = 30522  # bert-base-uncased's number of word pieces
IMPLEMENTATIONS = ("before", "float32", "bfloat16")


def _add_crows_pairs_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--model", help="a hub name (bert-base-uncased) or a save_pretrained folder"
    )
    source.add_argument(
        "--random-size",
        choices=sorted(RANDOM_SIZES),
        help="a randomly initialised BERT of this size, with a 30,522-piece WordPiece "
        "vocabulary trained on Brown (times the scoring offline; its scores mean nothing)",
    )
    parser.add_argument("--data", help="the CrowS-Pairs CSV (default: COURSE_CROWS_PAIRS or cache)")
    parser.add_argument("--sample", type=int, help="score only this many pairs (drawn with seed 0)")
    parser.add_argument(
        "--implementations",
        default="float32",
        help="comma-separated, run in turn on the same model and pairs: before (the "
        "implementation of commit 250c8d4, kept here to measure against), float32 (today's, "
        "exact), bfloat16 (today's, faster, scores move slightly)",
    )
    parser.add_argument(
        "--course-model",
        action="store_true",
        help="score the course's MaskedLanguageModel (the lesson's model) instead of Hugging "
        "Face's BertForMaskedLM with the same weights; 'before' always uses the latter",
    )
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--device", help="cpu, cuda, ... (default: the best available)")


def _random_bert(size: str, device):
    """A WordPiece tokenizer trained on Brown and a random BERT of ``size``: ``(tok, model)``."""
    import torch

    from course_utils.mlm import MaskedLanguageModel, train_wordpiece
    from course_utils.mlm_training import brown_texts

    tokenizer = train_wordpiece(brown_texts(None), BERT_VOCAB_SIZE, model_max_length=512)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = MaskedLanguageModel(len(tokenizer), **RANDOM_SIZES[size], max_len=512, dropout=0.0)
    return tokenizer, model.to(device).eval()


def _scores_before(model, tokenizer, pairs, batch_size: int = 128):
    """The scoring loop as it was before the speed-up (commit 250c8d4), for ``--implementations``.

    Copies of equal length in batches of 128, the head at the masked positions, under
    ``torch.no_grad``. Kept only so that the benchmark can time both in one run.
    """
    import torch

    from course_utils.crows_pairs import _prepare, _results_frame

    prepared = _prepare(tokenizer, pairs)
    sentences = [p[side] for p in prepared for side in ("more", "less")]
    jobs = sorted(
        (len(s["ids"]), index, position)
        for index, s in enumerate(sentences)
        for position in s["positions"]
    )
    totals = [0.0] * len(sentences)
    base, head = model.base_model, model.cls
    start = 0
    with torch.no_grad():
        while start < len(jobs):
            stop = start + 1
            length = jobs[start][0]
            while stop < len(jobs) and stop - start < batch_size and jobs[stop][0] == length:
                stop += 1
            batch = jobs[start:stop]
            input_ids = torch.tensor([sentences[index]["ids"] for _, index, _ in batch])
            positions = torch.tensor([position for _, _, position in batch])
            rows = torch.arange(len(batch))
            targets = input_ids[rows, positions]
            input_ids[rows, positions] = tokenizer.mask_token_id
            hidden = base(input_ids=input_ids.to(model.device)).last_hidden_state
            logits = head(hidden[rows, positions.to(model.device)])
            log_probs = logits.float().log_softmax(dim=-1).cpu()[rows, targets]
            for (_, index, _), value in zip(batch, log_probs.tolist(), strict=True):
                totals[index] += value
            start = stop
    return _results_frame(pairs, prepared, totals[0::2], totals[1::2])


def run_crows_pairs(args: argparse.Namespace) -> list[dict]:
    """Score a masked LM on CrowS-Pairs with each implementation; one result per implementation.

    Each gives the metric overall and per bias type, the seconds, the number of masked
    copies and of tokens run, and (after the first) how many pairs' scores differ from the
    first implementation's and by how much at most.
    """
    import os
    import time

    import torch

    from course_utils.crows_pairs import _prepare, crows_pairs_metric, crows_pairs_scores
    from course_utils.data import load_crows_pairs
    from course_utils.mlm import from_huggingface, to_huggingface
    from course_utils.pretrained import load_masked_lm

    implementations = [name.strip() for name in args.implementations.split(",") if name.strip()]
    unknown = sorted(set(implementations) - set(IMPLEMENTATIONS))
    if unknown or not implementations:
        raise ValueError(f"--implementations takes some of {IMPLEMENTATIONS}; got {unknown}")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device) if args.device else _best_device()
    pairs = load_crows_pairs(args.data)
    if args.sample is not None:
        pairs = pairs.sample(n=min(args.sample, len(pairs)), random_state=0)
    if args.random_size:
        tokenizer, course_model = _random_bert(args.random_size, device)
        hf_model = to_huggingface(course_model, tokenizer).to(device)
    else:
        tokenizer, hf_model = load_masked_lm(args.model, device=device)
        course_model = from_huggingface(hf_model) if args.course_model else None
    prepared = _prepare(tokenizer, pairs)
    sentences = [p[side] for p in prepared for side in ("more", "less")]
    copies = sum(len(s["positions"]) for s in sentences)
    tokens = sum(len(s["ids"]) * len(s["positions"]) for s in sentences)
    results, first = [], None
    for name in implementations:
        model = course_model if args.course_model and name != "before" else hf_model
        load_before = os.getloadavg()[0]
        start, cpu_start = time.perf_counter(), time.process_time()
        if name == "before":
            scores = _scores_before(model, tokenizer, pairs)
        else:
            scores = crows_pairs_scores(model, tokenizer, pairs, precision=name, progress=False)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        result = {
            "benchmark": "crows-pairs",
            "implementation": name,
            "model": args.model or f"random {args.random_size}",
            "architecture": type(model).__name__,
            **crows_pairs_metric(scores).as_dict(),
            "masked_copies": copies,
            "tokens": tokens,
            "seconds": round(seconds, 1),
            "cpu_seconds": round(cpu, 1),
            "load_average": [round(load_before, 1), round(os.getloadavg()[0], 1)],
            "device": str(device),
            "threads": torch.get_num_threads(),
        }
        if first is None:
            first = scores
        else:
            gap = (
                scores[["sent_more_score", "sent_less_score"]]
                - first[["sent_more_score", "sent_less_score"]]
            ).abs()
            result["versus_first"] = {
                "implementation": implementations[0],
                "speed_up": round(results[0]["seconds"] / seconds, 2),
                "cpu_speed_up": round(results[0]["cpu_seconds"] / cpu, 2),
                "pairs_with_a_different_score": int((gap.max(axis=1) > 0).sum()),
                "largest_score_difference": round(float(gap.to_numpy().max()), 3),
                "preferences_flipped": int(
                    (scores["more_preferred"] != first["more_preferred"]).sum()
                ),
            }
        results.append(result)
    return results


# The command line ------------------------------------------------------------------------

# name: (help, add its arguments, run it and return a JSON-able dict)
SUBCOMMANDS: dict[str, tuple[str, Callable, Callable]] = {
    "yelp": ("lesson 06: transformer vs TF-IDF baselines on Yelp", _add_yelp_arguments, run_yelp),
    "yelp-step": (
        "lesson 06: training-step time, the learner's parts vs the reference",
        _add_yelp_step_arguments,
        run_yelp_step,
    ),
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
    for line in result if isinstance(result, list) else [result]:  # crows-pairs: one per run
        print(json.dumps(line))
    return 0


if __name__ == "__main__":
    sys.exit(main())
