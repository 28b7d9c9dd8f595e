"""Lesson 06: splits, pretraining, the training loop, broken parts, checkpoints, baselines, bench.

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
from course_utils import classifier_pretraining as pretraining
from course_utils import classifier_training as training
from course_utils.classifier import build_classifier
from course_utils.classifier_data import (
    reviews_to_distil,
    split_off_validation,
    unlabelled_reviews,
)
from course_utils.classifier_metrics import (
    class_probabilities,
    classification_scores,
    cross_fitted_probabilities,
    majority_baseline,
    tfidf_baseline,
)
from course_utils.classifier_pretraining import (
    MaskedTokenHead,
    PretrainSettings,
    pretrain_encoder,
    pretrain_or_load,
    windows,
    word2vec_init,
)
from course_utils.classifier_tokenizer import encode_reviews, train_tokenizer
from course_utils.classifier_training import Recipe, evaluate, train_classifier, train_or_load
from course_utils.plots import confusion_heatmap, training_curves
from course_utils.training import adamw, length_batches, pad_batch, warmup_then_decay

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
    lr=3e-3, word2vec_epochs=0, pretrain_steps=0, teacher_weight=0.0,
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


def test_adamw_decays_the_weight_matrices_only():
    model = torch.nn.Sequential(
        torch.nn.Embedding(5, 4), torch.nn.Linear(4, 3), torch.nn.LayerNorm(3)
    )
    decayed, kept = adamw(model, lr=1e-3, weight_decay=0.1).param_groups
    assert [p.shape for p in decayed["params"]] == [(5, 4), (3, 4)]
    assert [p.shape for p in kept["params"]] == [(3,), (3,), (3,)]
    assert (decayed["weight_decay"], kept["weight_decay"], decayed["lr"]) == (0.1, 0.0, 1e-3)


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


def test_a_gpu_gets_the_measured_cpu_recipe_and_quick_mode_a_tiny_one(monkeypatch):
    monkeypatch.delenv("COURSE_QUICK", raising=False)
    cpu, gpu, tiny = (
        training.default_recipe("cpu"),
        training.default_recipe("cuda"),
        training.default_recipe("cpu", quick=True),
    )
    assert gpu == cpu  # a bigger GPU recipe was never measured
    assert tiny.vocab_size < cpu.vocab_size and tiny.max_len < cpu.max_len
    assert tiny.pretrain_steps < cpu.pretrain_steps
    monkeypatch.setenv("COURSE_QUICK", "1")  # read from the environment when not given
    assert training.default_recipe("cpu") == tiny
    assert set(cpu.model_sizes()) == {
        "d_model", "num_heads", "d_ff", "num_layers", "dropout", "attention_dropout", "pooling"
    }  # fmt: skip


def test_attention_dropout_changes_the_attention_weights_dropout_only(data, record_folder):
    from course_utils.classifier import set_attention_dropout

    sizes = {"d_model": 16, "num_heads": 2, "d_ff": 32, "num_layers": 2, "dropout": 0.1}
    for parts in ("reference", "yours"):
        model = build_classifier(
            data["vocab_size"], data["train"][1], 24, parts=parts, attention_dropout=0.0, **sizes
        )
        inside = {id(m) for block in model.encoder.layers for m in block.self_attn.modules()}
        rates = [(id(m) in inside, m.p) for m in model.modules() if isinstance(m, torch.nn.Dropout)]
        assert {p for attention, p in rates if attention} == {0.0}
        assert {p for attention, p in rates if not attention} == {0.1}
    # In training mode, with every other dropout off, only attention dropout makes noise.
    ids = torch.tensor([seq[:4] for seq in data["train"][0][:4]])
    for rate, same in ((0.0, True), (0.5, False)):
        torch.manual_seed(0)
        model = build_classifier(
            data["vocab_size"], data["train"][1], 24, **{**sizes, "dropout": 0.0},
            attention_dropout=rate,
        ).train()  # fmt: skip
        assert torch.equal(model(ids), model(ids)) is same

    class Block(torch.nn.Module):  # a learner's block: any dropout inside self_attn counts
        def __init__(self):
            super().__init__()
            self.self_attn = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.1))
            self.dropout1 = torch.nn.Dropout(0.1)

    encoder = torch.nn.Module()
    encoder.layers = torch.nn.ModuleList([Block(), Block()])
    set_attention_dropout(encoder, 0.0)
    assert [b.self_attn[1].p for b in encoder.layers] == [0.0, 0.0]
    assert [b.dropout1.p for b in encoder.layers] == [0.1, 0.1]
    encoder.layers.append(torch.nn.Linear(4, 4))
    with pytest.raises(ValueError, match="Linear has no self_attn"):
        set_attention_dropout(encoder, 0.0)
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\)"):
        set_attention_dropout(encoder, 1.0)


@pytest.mark.slow
def test_training_learns_the_synthetic_task_and_records_its_history(data):
    model = _model(data)
    history = train_classifier(model, data["train"], data["test"], RECIPE, progress=False)
    steps_per_epoch = -(-len(data["train"][0]) // RECIPE.batch_size)
    assert len(history.step_loss) == RECIPE.epochs * steps_per_epoch
    assert len(history.valid_accuracy) == len(history.train_loss) == RECIPE.epochs
    assert history.train_loss[-1] < history.train_loss[0]
    assert history.valid_accuracy[-1] > 0.6  # chance is 0.2
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
    fresh = _model(data, recipe)  # the same starting weights
    loaded = train_or_load(fresh, data["train"], data["test"], recipe, folder=tmp_path)
    assert loaded == history
    for key, value in model.state_dict().items():
        torch.testing.assert_close(fresh.state_dict()[key], value)
    # Another recipe, other data or other starting weights (another pretraining, other
    # parts) is another run: it trains.
    with pytest.raises(AssertionError, match="should have been loaded"):
        start = _model(data, recipe)
        train_or_load(start, data["train"], data["test"], replace(recipe, lr=1e-4), folder=tmp_path)
    fewer = (data["train"][0][:-1], data["train"][1][:-1])
    with pytest.raises(AssertionError, match="should have been loaded"):
        train_or_load(_model(data, recipe), fewer, data["test"], recipe, folder=tmp_path)
    with pytest.raises(AssertionError, match="should have been loaded"):
        other = _model(data, replace(recipe, seed=5))
        train_or_load(other, data["train"], data["test"], recipe, folder=tmp_path)
    # So is another teacher.
    taught = replace(recipe, teacher_weight=0.5)
    uniform, peaked = np.full((len(data["train"][0]), 5), 0.2), np.eye(5)[data["train"][1]]
    monkeypatch.undo()
    train_or_load(_model(data, recipe), data["train"], data["test"], taught, folder=tmp_path,
                  teacher=uniform)  # fmt: skip
    monkeypatch.setattr(training, "train_classifier", no_training)
    train_or_load(_model(data, recipe), data["train"], data["test"], taught, folder=tmp_path,
                  teacher=uniform)  # fmt: skip
    with pytest.raises(AssertionError, match="should have been loaded"):
        train_or_load(_model(data, recipe), data["train"], data["test"], taught, folder=tmp_path,
                      teacher=peaked)  # fmt: skip


def test_tfidf_baseline_learns_the_synthetic_task(data):
    train, test = data["frames"]
    result = tfidf_baseline(train["text"], train["label"], test["text"])
    assert classification_scores(test["label"], result.predictions)["accuracy"] > 0.6
    majority = majority_baseline([3, 3, 1, 4], 5)
    assert majority.predictions.tolist() == [3] * 5


def test_cross_fitted_probabilities_come_from_a_baseline_that_never_saw_the_review():
    # Random labels: nothing to learn, so a baseline that never saw a review is right about
    # one time in five. Fitted on every review (the classic mistake), it memorises the
    # labels of the reviews it then predicts and is right far more often.
    texts = synthetic_reviews(300, seed=6)["text"].tolist()
    labels = np.random.default_rng(0).integers(0, 5, len(texts))
    probabilities = cross_fitted_probabilities(texts, labels)
    assert probabilities.shape == (300, 5)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    assert np.mean(probabilities.argmax(axis=1) == labels) < 0.35
    memorised = tfidf_baseline(texts, labels, texts, class_weight="balanced").predictions
    assert np.mean(memorised == labels) > 0.6
    # On the synthetic task it learns: its probabilities carry the classes.
    train = synthetic_reviews(300, seed=1)
    learned = cross_fitted_probabilities(train["text"], train["label"])
    assert np.mean(learned.argmax(axis=1) == train["label"].to_numpy()) > 0.6
    again = cross_fitted_probabilities(train["text"], train["label"])
    np.testing.assert_array_equal(learned, again)  # seeded


def test_cross_fitted_probabilities_name_their_columns_by_class():
    frame = synthetic_reviews(60, seed=7)
    frame = frame[frame["label"] != 2]  # no 3-star review: its column is 0
    probabilities = cross_fitted_probabilities(frame["text"], frame["label"])
    assert probabilities.shape == (len(frame), 5)
    assert (probabilities[:, 2] == 0).all() and (probabilities[:, [0, 1, 3, 4]] > 0).all()
    few = frame[(frame["label"] != 4) | (frame.index.isin(frame.index[frame["label"] == 4][:3]))]
    assert cross_fitted_probabilities(few["text"], few["label"]).shape == (len(few), 5)  # 3 folds
    with pytest.raises(ValueError, match="at least 2 reviews"):
        cross_fitted_probabilities(["good food", "bad food", "fine food"], [0, 0, 1])
    with pytest.raises(ValueError, match="3 texts but 2 labels"):
        cross_fitted_probabilities(["a", "b", "c"], [0, 1])


@pytest.mark.slow
def test_the_teacher_term_is_the_same_cross_entropy_with_soft_targets(data):
    labels = torch.tensor(data["train"][1])
    one_hot = torch.nn.functional.one_hot(labels, 5).float().numpy()
    alone = train_classifier(_model(data), data["train"], data["test"], RECIPE, progress=False)
    for weight in (0.5, 1.0):  # one-hot targets are the labels: the same training, step by step
        taught = train_classifier(
            _model(data), data["train"], data["test"], replace(RECIPE, teacher_weight=weight),
            teacher=one_hot, progress=False,
        )  # fmt: skip
        assert taught.step_loss == pytest.approx(alone.step_loss, rel=1e-4)
        assert taught.train_loss == pytest.approx(alone.train_loss, rel=1e-4)


@pytest.mark.slow
def test_the_teacher_row_of_each_review_is_the_one_it_learns(data):
    # A teacher that says every review has the next rating: with all the weight on it, the
    # model learns the shifted labels, which it can only do if each review meets its own row.
    shifted = (torch.tensor(data["test"][1]) + 1) % 5
    teacher = torch.nn.functional.one_hot((torch.tensor(data["train"][1]) + 1) % 5, 5).float()
    model = _model(data)
    history = train_classifier(
        model, data["train"], data["test"], replace(RECIPE, teacher_weight=1.0),
        teacher=teacher, progress=False,
    )  # fmt: skip
    assert np.mean(np.array(history.predictions) == shifted.numpy()) > 0.6
    assert history.train_loss[-1] > history.train_loss[0]  # the labels' loss grows


def test_a_teacher_is_checked_before_training(data):
    recipe = replace(RECIPE, teacher_weight=0.5)
    model, count = _model(data), len(data["train"][0])
    with pytest.raises(ValueError, match=r"no teacher was given.*teacher_weight=0"):
        train_classifier(model, data["train"], data["test"], recipe, progress=False)
    with pytest.raises(ValueError, match=rf"one row .* per training review \({count}\)"):
        train_classifier(
            model, data["train"], data["test"], recipe, teacher=np.full((count - 1, 5), 0.2)
        )
    with pytest.raises(ValueError, match="summing to 1"):
        train_classifier(model, data["train"], data["test"], recipe, teacher=np.ones((count, 5)))
    with pytest.raises(ValueError, match=r"teacher_weight must lie in \[0, 1\]"):
        train_classifier(model, data["train"], data["test"], replace(recipe, teacher_weight=2.0))


def test_unlabelled_reviews_add_the_teacher_term_alone(data, monkeypatch):
    # Oracle: the loss of every step, recomputed review by review from the formula
    # w * CE(p, q) + (1 - w) * CE(p, y) [the label's term only for labelled reviews], averaged
    # over the batch. lr = 0 and no dropout keep the model fixed, so each step can be redone.
    recipe = replace(RECIPE, teacher_weight=0.3, lr=0.0, dropout=0.0, epochs=2)
    rng = np.random.default_rng(0)
    train_seqs, train_labels = data["train"]
    extra_seqs = data["test"][0]
    teacher = rng.dirichlet(np.ones(5), len(train_seqs))
    extra_teacher = rng.dirichlet(np.ones(5), len(extra_seqs))
    shuffled, losses = [], []

    def recording_batches(sequences, batch_size, *, shuffle, seed=0):
        batches = length_batches(sequences, batch_size, shuffle=shuffle, seed=seed)
        if shuffle:
            shuffled.extend(batches)
        return batches

    def recording_loss(model, ids, compute, hint):
        loss = compute()
        losses.append(loss.item())
        return loss

    monkeypatch.setattr(training, "length_batches", recording_batches)
    monkeypatch.setattr(training, "guarded_loss", recording_loss)
    model = _model(data, recipe)
    history = train_classifier(
        model, data["train"], data["test"], recipe, teacher=teacher,
        unlabelled=(extra_seqs, extra_teacher), progress=False,
    )  # fmt: skip
    sequences = [*train_seqs, *extra_seqs]
    targets = torch.tensor(np.concatenate([teacher, extra_teacher]), dtype=torch.float32)
    labels = torch.tensor([*train_labels, *[-1] * len(extra_seqs)])
    assert len(shuffled) == len(losses) == len(history.step_loss)
    assert len(shuffled) == 2 * -(-len(sequences) // recipe.batch_size)
    mixed = 0
    model.train()
    with torch.no_grad():
        for batch, loss in zip(shuffled, losses, strict=True):
            log_p = model(pad_batch([sequences[i] for i in batch], model.pad_id)).log_softmax(-1)
            per_review = -0.3 * (targets[batch] * log_p).sum(-1)
            for row, i in enumerate(batch):
                if labels[i] >= 0:
                    per_review[row] -= 0.7 * log_p[row, labels[i]]
            assert loss == pytest.approx(per_review.mean().item(), rel=1e-4, abs=1e-6)
            mixed += 0 < int((labels[batch] >= 0).sum()) < len(batch)
    assert mixed > 0  # some batches held both kinds of review
    assert all(np.isfinite(history.train_loss))


def test_unlabelled_reviews_are_checked_and_change_the_checkpoint(data, tmp_path):
    recipe = replace(RECIPE, teacher_weight=0.5, epochs=1)
    count, extra = len(data["train"][0]), data["test"][0][:40]
    teacher = np.full((count, 5), 0.2)
    with pytest.raises(ValueError, match=r"teacher_weight is 0.*leave out unlabelled="):
        train_classifier(
            _model(data), data["train"], data["test"], replace(recipe, teacher_weight=0.0),
            unlabelled=(extra, np.full((40, 5), 0.2)),
        )  # fmt: skip
    with pytest.raises(ValueError, match=r"one row .* per unlabelled review \(40\)"):
        train_classifier(
            _model(data), data["train"], data["test"], recipe, teacher=teacher,
            unlabelled=(extra, np.full((39, 5), 0.2)),
        )  # fmt: skip
    with pytest.raises(ValueError, match="for the unlabelled reviews must be probabilities"):
        train_classifier(
            _model(data), data["train"], data["test"], recipe, teacher=teacher,
            unlabelled=(extra, np.full((40, 5), 0.5)),
        )  # fmt: skip
    with pytest.raises(ValueError, match="negative"):
        train_classifier(
            _model(data), (data["train"][0], [-1] * count), data["test"], recipe,
            teacher=teacher,
        )  # fmt: skip
    runs = []
    for unlabelled in (None, (extra, np.full((40, 5), 0.2)), (extra, np.eye(5)[[1] * 40])):
        run = train_or_load(
            _model(data), data["train"], data["test"], recipe, folder=tmp_path,
            teacher=teacher, unlabelled=unlabelled, progress=False,
        )  # fmt: skip
        runs.append(run)
    assert len(list(tmp_path.glob("classifier-*.pt"))) == 3  # each run its own checkpoint
    steps = [len(run.step_loss) for run in runs]
    assert steps == [-(-count // 16), -(-(count + 40) // 16), -(-(count + 40) // 16)]


def test_reviews_to_distil_are_new_unique_and_in_corpus_order():
    corpus = ["a", "b", "c", "b", "d", "e"]
    assert reviews_to_distil(corpus, ["a", "c"], 3) == ["b", "d", "e"]
    assert reviews_to_distil(corpus, ["a", "c"], 10) == ["b", "d", "e"]  # as many as there are
    assert reviews_to_distil(corpus, [], 0) == []
    with pytest.raises(ValueError, match="0 or more"):
        reviews_to_distil(corpus, [], -1)


def test_class_probabilities_put_each_class_in_its_own_column():
    frame = synthetic_reviews(100, seed=3)
    frame = frame[frame["label"] != 1]  # the baseline never sees 2 stars
    fitted = tfidf_baseline(frame["text"], frame["label"], ["x"], class_weight="balanced")
    texts = ["amazing perfect best", "awful worst rude", "okay fine"]
    probabilities = class_probabilities(fitted.model, texts, 5)
    assert probabilities.shape == (3, 5) and (probabilities[:, 1] == 0).all()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    assert probabilities.argmax(axis=1).tolist() == [4, 0, 2]
    assert class_probabilities(fitted.model, [], 5).shape == (0, 5)
    with pytest.raises(ValueError, match=r"not 0\.\.2"):
        class_probabilities(fitted.model, texts, 3)


def test_plots_draw_the_history_and_a_confusion_matrix():
    history = training.History(
        step_loss=list(np.linspace(1.6, 0.8, 40)),
        train_loss=[1.4, 1.1, 0.9, 0.8],
        valid_loss=[1.3, 1.1, 1.05, 1.1],
        valid_accuracy=[0.4, 0.5, 0.55, 0.56],
    )
    loss_ax, accuracy_ax = training_curves(history, baseline=0.55)
    assert len(accuracy_ax.lines) == 2 and len(loss_ax.lines) == 3
    history.step_loss[7] = float("nan")  # a batch of unlabelled reviews only
    loss_ax, _ = training_curves(history)
    assert np.isfinite(loss_ax.lines[0].get_ydata()).all()
    ax = confusion_heatmap(np.array([[3, 1], [0, 4]]), ["bad", "good"])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["bad", "good"]
    with pytest.raises(ValueError, match="square"):
        confusion_heatmap(np.ones((2, 3)))
    matplotlib.pyplot.close("all")


@pytest.mark.slow
def test_bench_yelp_prints_one_json_line_with_seeds_and_both_baselines(tmp_path, capsys):
    train_file, valid_file, test_file = (tmp_path / f"{n}.csv" for n in ("train", "valid", "test"))
    synthetic_reviews(200, seed=3).to_csv(train_file, index=False)
    synthetic_reviews(40, seed=5).to_csv(valid_file, index=False)
    synthetic_reviews(50, seed=4).to_csv(test_file, index=False)
    arguments = ["yelp", "--train", str(train_file), "--test", str(test_file), "--quick"]
    code = bench.main([*arguments, "--valid", str(valid_file), "--seeds", "2", "--epochs", "1"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert code == 0 and len(lines) == 1
    result = json.loads(lines[0])
    assert (result["train_reviews"], result["valid_reviews"], result["test_reviews"]) == (
        200, 40, 50
    )  # fmt: skip
    assert [run["seed"] for run in result["runs"]] == [0, 1]
    accuracies = [run["test_accuracy"] for run in result["runs"]]
    assert result["transformer_accuracy"]["mean"] == pytest.approx(np.mean(accuracies), abs=1e-4)
    assert result["transformer_accuracy"]["sd"] == pytest.approx(
        np.std(accuracies, ddof=1), abs=1e-4
    )
    assert set(result["baselines"]) == {"tfidf", "tfidf_balanced"}
    for baseline in result["baselines"].values():
        for metric in ("accuracy", "macro_f1", "within_one"):
            assert 0.0 <= baseline[metric] <= 1.0
    stronger = max(b["accuracy"] for b in result["baselines"].values())
    assert result["stronger_baseline_accuracy"] == stronger
    assert isinstance(result["parameters"], int) and result["parameters"] > 0
    assert all(len(run["valid_accuracy_per_epoch"]) == 1 for run in result["runs"])
    assert result["recipe"]["epochs"] == 1
    teacher = result["teacher"]  # the recipe learns from the cross-fitted balanced baseline
    assert teacher["weight"] == result["recipe"]["teacher_weight"] > 0
    assert 0.0 <= teacher["cross_fitted_train_accuracy"] <= 1.0
    # Without --valid, a stratified tenth of the training reviews is held out; --set
    # changes any field of the recipe.
    sets = ["--set", "class_weight=balanced", "--set", "lr=0.002"]
    bench.main([*arguments, "--epochs", "1", "--pretrain-steps", "2", *sets])
    result = json.loads(capsys.readouterr().out)
    assert (result["train_reviews"], result["valid_reviews"]) == (180, 20)
    assert (result["recipe"]["class_weight"], result["recipe"]["lr"]) == ("balanced", 0.002)
    bench.main([*arguments, "--epochs", "1", "--pretrain-steps", "2", "--set", "teacher_weight=0"])
    assert json.loads(capsys.readouterr().out)["teacher"] is None  # the labels alone
    with pytest.raises(ValueError, match="FIELD=VALUE"):
        bench.main([*arguments, "--set", "learning_rate=0.1"])


def test_bench_needs_a_benchmark_name(capsys):
    with pytest.raises(SystemExit):
        bench.main([])
    assert "yelp" in capsys.readouterr().err


# Validation split, unlabelled reviews, pretraining -----------------------------------------


def test_validation_is_stratified_and_disjoint_from_training():
    frame = synthetic_reviews(300, seed=7)
    train, valid = split_off_validation(frame, 0.1, seed=0)
    assert len(train) + len(valid) == len(frame) and len(valid) == 30
    assert valid["label"].value_counts().to_dict() == {label: 6 for label in range(5)}
    assert not set(train["text"]) & set(valid["text"]) - set(
        frame["text"][frame["text"].duplicated()]
    )
    again, _ = split_off_validation(frame, 0.1, seed=0)
    assert again.equals(train)  # seeded
    with pytest.raises(ValueError, match="fraction"):
        split_off_validation(frame, 1.0)


def test_unlabelled_reviews_never_hold_a_validation_or_test_review(tmp_path, monkeypatch):
    extra = tmp_path / "extra.csv"
    pd.DataFrame({"text": ["held out", "fresh one", "train a", "fresh one"]}).to_csv(extra)
    monkeypatch.setenv("COURSE_YELP_UNLABELLED", str(extra))
    monkeypatch.delenv("COURSE_QUICK", raising=False)
    texts = unlabelled_reviews(["train a", "train b"], exclude=["held out"])
    assert texts == ["train a", "train b", "fresh one"]  # no duplicates, nothing excluded
    monkeypatch.setenv("COURSE_YELP_UNLABELLED", str(tmp_path / "missing.csv"))
    with pytest.raises(FileNotFoundError, match=r"missing\.csv"):
        unlabelled_reviews(["train a"], exclude=[])
    # With the training file set and no extra files, the training texts only.
    monkeypatch.delenv("COURSE_YELP_UNLABELLED")
    monkeypatch.setenv("COURSE_YELP_TRAIN", str(extra))
    assert unlabelled_reviews(["b", "a", "b"], exclude=["a"]) == ["b"]


def test_windows_cut_reviews_into_consecutive_pieces():
    cut = windows([list(range(10)), list(range(3)), list(range(20, 29))], 4, min_tokens=2)
    assert cut == [
        [0, 1, 2, 3],
        [4, 5, 6, 7],
        [8, 9],
        [0, 1, 2],
        [20, 21, 22, 23],
        [24, 25, 26, 27],
    ]
    with pytest.raises(ValueError, match="length"):
        windows([[1, 2]], 1)


def test_the_masked_token_head_is_tied_to_the_embedding():
    model = _model_for_pretraining(vocab_size=50)
    head = MaskedTokenHead(model.embedding)
    assert all(p is not model.embedding.weight for p in head.parameters())  # not twice
    logits = head(torch.randn(7, model.d_model))
    assert logits.shape == (7, 50)
    with torch.no_grad():
        model.embedding.weight.zero_()
    torch.testing.assert_close(head(torch.randn(3, model.d_model)), head.bias.expand(3, 50))


def _model_for_pretraining(vocab_size=200, seed=0):
    torch.manual_seed(seed)
    return build_classifier(
        vocab_size, [0, 1, 2, 3, 4], 24, d_model=16, num_heads=2, d_ff=32, dropout=0.1
    )


@pytest.mark.slow
def test_pretraining_lowers_the_masked_token_loss_and_leaves_the_head_alone(data):
    model = _model_for_pretraining(data["vocab_size"])
    head_before = model.head.weight.detach().clone()
    chunks = windows(data["train"][0] * 3, 16)
    settings = PretrainSettings(steps=150, length=16, batch_size=32, lr=3e-3)
    history = pretrain_encoder(model, chunks, settings, mask_id=3, progress=False)
    assert len(history.step_loss) == 150 and history.windows == len(chunks)
    first, last = np.mean(history.step_loss[:20]), np.mean(history.step_loss[-20:])
    assert first > np.log(data["vocab_size"]) - 1.0  # starts near a uniform guess
    assert last < first - 1.0
    torch.testing.assert_close(model.head.weight, head_before)
    with pytest.raises(ValueError, match="steps"):
        pretrain_encoder(model, chunks, replace(settings, steps=-1), mask_id=3)


@pytest.mark.slow
def test_pretraining_is_cached_by_settings_data_and_starting_weights(data, tmp_path, monkeypatch):
    chunks = windows(data["train"][0], 16)
    settings = PretrainSettings(steps=5, length=16, batch_size=16)
    model = _model_for_pretraining(data["vocab_size"])
    pretrain_or_load(model, chunks, settings, mask_id=3, folder=tmp_path, progress=False)
    assert len(list(tmp_path.glob("pretrained-*.pt"))) == 1

    def no_training(*args, **kwargs):
        raise AssertionError("the pretrained weights should have been loaded")

    monkeypatch.setattr(pretraining, "pretrain_encoder", no_training)
    again = _model_for_pretraining(data["vocab_size"])
    pretrain_or_load(again, chunks, settings, mask_id=3, folder=tmp_path, progress=False)
    torch.testing.assert_close(again.state_dict(), model.state_dict())
    with pytest.raises(AssertionError, match="should have been loaded"):
        other_start = _model_for_pretraining(data["vocab_size"], seed=1)
        pretrain_or_load(other_start, chunks, settings, mask_id=3, folder=tmp_path)


# A learner's part that breaks training -----------------------------------------------------


@pytest.fixture
def record_folder(tmp_path, monkeypatch):
    from course_utils import parts

    monkeypatch.setenv("COURSE_PARTS_DIR", str(tmp_path / "parts"))
    monkeypatch.delenv("COURSE_PARTS", raising=False)
    parts._loaded.clear()
    yield tmp_path / "parts"
    parts._loaded.clear()


def _record(exercise, submission):
    from course_utils.exercises import check

    check(exercise, submission)


def test_a_part_that_makes_the_loss_nan_is_named_and_falls_back(data, record_folder, capsys):
    from course_utils import parts
    from course_utils.classifier import BrokenPart, masked_mean_pool

    def pooling(hidden, mask):  # passes the check, but is NaN on reviews of exactly 9 tokens
        pooled = masked_mean_pool(hidden, mask)
        nine = mask.sum(dim=1, keepdim=True) == 9
        return torch.where(nine, torch.full_like(pooled, float("nan")), pooled)

    _record("6.1", pooling)
    assert parts.get("pooling").origin == "yours"
    torch.manual_seed(0)
    model = build_classifier(
        data["vocab_size"], data["train"][1], 24, parts="yours", **RECIPE.model_sizes()
    )
    sequences = [ids[:9] if i % 7 == 0 else ids for i, ids in enumerate(data["train"][0])]
    with pytest.raises(BrokenPart, match=r"Your pooling \(exercise 6\.1\).*NaN"):
        train_classifier(model, (sequences, data["train"][1]), data["test"], RECIPE, progress=False)
    assert parts.get("pooling").origin == "reference"  # from now on, and after a restart
    assert "broke when used" in parts.get("pooling").reason


def test_a_part_that_raises_inside_the_model_is_named(data, record_folder):
    from course_utils import parts
    from course_utils.classifier import BrokenPart
    from course_utils.positional import add_positional_encoding

    def add_positions(x, table):  # passes the check, fails on sequences longer than 20
        if x.size(1) > 20:
            raise IndexError("my table lookup went out of range")
        return add_positional_encoding(x, table)

    _record("5.2", add_positions)
    torch.manual_seed(0)
    model = build_classifier(
        data["vocab_size"], data["train"][1], 24, parts="yours", **RECIPE.model_sizes()
    )
    with pytest.raises(BrokenPart, match=r"add_positional_encoding \(exercise 5\.2\).*IndexError"):
        train_classifier(model, data["train"], data["test"], RECIPE, progress=False)
    assert parts.get("add_positional_encoding").origin == "reference"


def test_a_reference_model_that_diverges_blames_the_learning_rate_not_a_part(data, record_folder):
    model = _model(data)
    with torch.no_grad():
        model.head.bias.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="learning rate"):
        train_classifier(model, data["train"], data["test"], RECIPE, progress=False)


def test_balanced_class_weights_equal_scikit_learns():
    from sklearn.utils.class_weight import compute_class_weight

    from course_utils.classifier_training import class_weights

    labels = torch.randint(0, 5, (300,), generator=torch.Generator().manual_seed(3))
    labels[labels == 2] = 3  # class 2 never occurs: weight 0, the others as scikit-learn's
    present = sorted(set(labels.tolist()))
    expected = compute_class_weight("balanced", classes=np.array(present), y=labels.numpy())
    weights = class_weights(labels, "balanced")
    assert present == [0, 1, 3, 4] and weights.shape == (5,) and weights[2] == 0
    torch.testing.assert_close(weights[present], torch.tensor(expected, dtype=torch.float32))
    assert class_weights(labels, "balanced", num_classes=7)[4:].tolist()[1:] == [0.0, 0.0]
    assert class_weights(labels, None) is None
    with pytest.raises(ValueError, match="balanced"):
        class_weights(labels, "inverse")
