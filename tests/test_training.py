"""Lesson 06: the training loop, checkpoints, the baseline, the plots and the bench command.

Everything here runs on a small synthetic review set made on the spot, so no test needs
the network or the shared data.
"""

from __future__ import annotations

import itertools
import json
import random
from dataclasses import replace

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch

from course_utils import bench
from course_utils import classifier_training as training
from course_utils.classifier import build_classifier
from course_utils.classifier_metrics import classification_scores, majority_baseline, tfidf_baseline
from course_utils.classifier_tokenizer import encode_reviews, train_tokenizer
from course_utils.classifier_training import (
    Recipe,
    evaluate,
    train_classifier,
    train_or_load,
    word2vec_init,
)
from course_utils.plots import confusion_heatmap, training_curves
from course_utils.training import length_batches, warmup_then_decay

matplotlib.use("Agg")

# Words that give a review's stars away, and filler that does not.
STAR_WORDS = [
    ["awful", "disgusting", "rude", "never", "worst"],
    ["bland", "slow", "disappointing", "cold", "meh"],
    ["okay", "average", "decent", "fine", "alright"],
    ["good", "tasty", "friendly", "nice", "solid"],
    ["amazing", "perfect", "wonderful", "best", "love"],
]
FILLER = "the a we our food place table dinner menu ordered was and it had with".split()


def synthetic_reviews(count: int, seed: int) -> pd.DataFrame:
    """Reviews of 4 to 30 words, a third of them telling words of the review's class."""
    rng = random.Random(seed)
    rows = []
    for index in range(count):
        label = index % 5
        words = [
            rng.choice(STAR_WORDS[label]) if rng.random() < 0.35 else rng.choice(FILLER)
            for _ in range(rng.randint(4, 30))
        ]
        rows.append({"label": label, "text": " ".join(words)})
    return pd.DataFrame(rows).sample(frac=1.0, random_state=seed).reset_index(drop=True)


@pytest.fixture(scope="module")
def data():
    train, test = synthetic_reviews(300, seed=1), synthetic_reviews(100, seed=2)
    tokenizer = train_tokenizer(train["text"], vocab_size=200, min_frequency=1)
    encode = lambda frame: encode_reviews(tokenizer, frame["text"], 24)  # noqa: E731
    return {
        "train": (encode(train), train["label"].tolist()),
        "test": (encode(test), test["label"].tolist()),
        "vocab_size": tokenizer.get_vocab_size(),
        "frames": (train, test),
    }


RECIPE = Recipe(
    vocab_size=200, max_len=24, d_model=16, num_heads=2, d_ff=32, epochs=4, batch_size=16,
    lr=3e-3, word2vec_epochs=0,
)  # fmt: skip


def _model(data, recipe=RECIPE):
    torch.manual_seed(recipe.seed)
    labels = data["train"][1]
    return build_classifier(data["vocab_size"], labels, recipe.max_len, **recipe.model_sizes())


def test_warmup_rises_to_one_then_decays_to_zero():
    factors = [warmup_then_decay(step, 10, 100) for step in range(100)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert all(a <= b for a, b in itertools.pairwise(factors[:10]))
    assert all(a >= b for a, b in itertools.pairwise(factors[9:]))
    assert factors[-1] == pytest.approx(1 / 90) and warmup_then_decay(100, 10, 100) == 0.0


def test_length_batches_cover_every_review_once_and_group_similar_lengths():
    sequences = [[1] * length for length in random.Random(0).choices(range(1, 200), k=1000)]
    batches = length_batches(sequences, 10, shuffle=True, seed=3)
    assert sorted(i for batch in batches for i in batch) == list(range(1000))
    assert length_batches(sequences, 10, shuffle=True, seed=3) == batches  # seeded
    spread = np.mean([np.ptp([len(sequences[i]) for i in batch]) for batch in batches])
    assert spread < 20  # random batches of 10 would spread over ~160 tokens
    ordered = length_batches(sequences, 10, shuffle=False)
    lengths = [len(sequences[i]) for batch in ordered for i in batch]
    assert lengths == sorted(lengths)
    with pytest.raises(ValueError, match="batch_size"):
        length_batches(sequences, 0, shuffle=False)


def test_default_recipes_fit_the_device():
    cpu, gpu, tiny = (
        training.default_recipe("cpu"),
        training.default_recipe("cuda"),
        training.default_recipe("cpu", quick=True),
    )
    assert gpu.d_model > cpu.d_model and gpu.num_layers > cpu.num_layers
    assert tiny.vocab_size < cpu.vocab_size and tiny.max_len < cpu.max_len
    assert set(cpu.model_sizes()) == {
        "d_model", "num_heads", "d_ff", "num_layers", "dropout", "pooling"
    }  # fmt: skip


@pytest.mark.slow
def test_training_learns_the_synthetic_task_and_records_its_history(data):
    model = _model(data)
    history = train_classifier(model, data["train"], data["test"], RECIPE, progress=False)
    steps_per_epoch = -(-len(data["train"][0]) // RECIPE.batch_size)
    assert len(history.step_loss) == RECIPE.epochs * steps_per_epoch
    assert len(history.test_accuracy) == len(history.train_loss) == RECIPE.epochs
    assert history.train_loss[-1] < history.train_loss[0]
    assert history.test_accuracy[-1] > 0.6  # chance is 0.2
    _, predictions = evaluate(model, *data["test"])
    assert predictions.tolist() == history.predictions
    assert history.seconds > 0


@pytest.mark.slow
def test_training_is_seeded(data):
    first = train_classifier(_model(data), data["train"], data["test"], RECIPE, progress=False)
    again = train_classifier(_model(data), data["train"], data["test"], RECIPE, progress=False)
    assert first.step_loss == pytest.approx(again.step_loss, rel=1e-4)


def test_word2vec_init_sets_the_rows_of_seen_tokens_at_the_embedding_scale(data):
    model = _model(data)
    before = model.embedding.weight.detach().clone()
    rows = word2vec_init(model, data["train"][0], epochs=2)
    seen = sorted({token for ids in data["train"][0] for token in ids})
    assert rows == len(seen)
    after = model.embedding.weight.detach()
    assert not torch.allclose(after[seen], before[seen])
    unseen = [t for t in range(1, data["vocab_size"]) if t not in seen]
    torch.testing.assert_close(after[unseen], before[unseen])
    assert torch.count_nonzero(after[model.pad_id]) == 0
    scaled = after[seen] * model.d_model**0.5
    assert scaled.std(dim=1).mean().item() == pytest.approx(1.0, rel=0.05)
    # Deterministic: the same vectors in a second run.
    other = _model(data)
    word2vec_init(other, data["train"][0], epochs=2)
    torch.testing.assert_close(other.embedding.weight, model.embedding.weight)


@pytest.mark.slow
def test_checkpoint_is_reused_when_recipe_and_data_match(data, tmp_path, monkeypatch):
    recipe = replace(RECIPE, epochs=1)
    model = _model(data, recipe)
    history = train_or_load(model, data["train"], data["test"], recipe, folder=tmp_path)
    saved = list(tmp_path.glob("classifier-*.pt"))
    assert len(saved) == 1

    def no_training(*args, **kwargs):
        raise AssertionError("the checkpoint should have been loaded")

    monkeypatch.setattr(training, "train_classifier", no_training)
    fresh = _model(data, replace(recipe, seed=5))  # different starting weights
    loaded = train_or_load(fresh, data["train"], data["test"], recipe, folder=tmp_path)
    assert loaded == history
    for key, value in model.state_dict().items():
        torch.testing.assert_close(fresh.state_dict()[key], value)
    # Another recipe, or other data, is another run: it trains.
    with pytest.raises(AssertionError, match="should have been loaded"):
        train_or_load(fresh, data["train"], data["test"], replace(recipe, lr=1e-4), folder=tmp_path)
    fewer = (data["train"][0][:-1], data["train"][1][:-1])
    with pytest.raises(AssertionError, match="should have been loaded"):
        train_or_load(fresh, fewer, data["test"], recipe, folder=tmp_path)


def test_tfidf_baseline_learns_the_synthetic_task(data):
    train, test = data["frames"]
    result = tfidf_baseline(train["text"], train["label"], test["text"])
    assert classification_scores(test["label"], result.predictions)["accuracy"] > 0.6
    majority = majority_baseline([3, 3, 1, 4], 5)
    assert majority.predictions.tolist() == [3] * 5


def test_plots_draw_the_history_and_a_confusion_matrix():
    history = training.History(
        step_loss=list(np.linspace(1.6, 0.8, 40)),
        train_loss=[1.4, 1.1, 0.9, 0.8],
        test_loss=[1.3, 1.1, 1.05, 1.1],
        test_accuracy=[0.4, 0.5, 0.55, 0.56],
    )
    loss_ax, accuracy_ax = training_curves(history, baseline=0.55)
    assert len(accuracy_ax.lines) == 2 and len(loss_ax.lines) == 3
    ax = confusion_heatmap(np.array([[3, 1], [0, 4]]), ["bad", "good"])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["bad", "good"]
    with pytest.raises(ValueError, match="square"):
        confusion_heatmap(np.ones((2, 3)))
    matplotlib.pyplot.close("all")


@pytest.mark.slow
def test_bench_yelp_prints_one_json_line(tmp_path, capsys):
    train_file, test_file = tmp_path / "train.csv", tmp_path / "test.csv"
    synthetic_reviews(200, seed=3).to_csv(train_file, index=False)
    synthetic_reviews(50, seed=4).to_csv(test_file, index=False)
    code = bench.main(
        ["yelp", "--train", str(train_file), "--test", str(test_file), "--quick", "--epochs", "1"]
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert code == 0 and len(lines) == 1
    result = json.loads(lines[0])
    assert result["train_reviews"] == 200 and result["test_reviews"] == 50
    for key in ("transformer", "baseline"):
        for metric in ("accuracy", "macro_f1", "within_one"):
            assert 0.0 <= result[f"{key}_{metric}"] <= 1.0
    assert isinstance(result["parameters"], int) and result["parameters"] > 0
    assert result["train_seconds"] >= 0 and result["epochs"] == 1
    assert len(result["transformer_accuracy_per_epoch"]) == 1


def test_bench_needs_a_benchmark_name(capsys):
    with pytest.raises(SystemExit):
        bench.main([])
    assert "yelp" in capsys.readouterr().err
