"""Lesson 06: the classifier cannot repeat the original's bugs; tokenizer, metrics, checkers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from course_utils.attention import padding_mask
from course_utils.checkers.classifier import FORWARD_MISTAKES, POOL_MISTAKES
from course_utils.checking import CheckFailed
from course_utils.classifier import (
    TransformerClassifier,
    build_classifier,
    classifier_forward,
    count_parameters,
    masked_mean_pool,
)
from course_utils.classifier_metrics import classification_scores, confusion_matrix
from course_utils.classifier_tokenizer import (
    CLS,
    PAD,
    UNK,
    encode_reviews,
    head_tail,
    load_tokenizer,
    train_or_load_tokenizer,
    train_tokenizer,
)
from course_utils.exercises import check
from course_utils.parts import PARTS
from course_utils.training import pad_batch

SENTENCES = [
    "The pasta was cold and the waiter ignored us for twenty minutes.",
    "Absolutely wonderful brunch, friendly staff and great coffee!",
    "It was fine. Nothing special, nothing terrible.",
    "Worst pizza I have ever had; never again.",
    "Lovely patio, decent burgers, slow service.",
] * 4


@pytest.fixture
def generator():
    return torch.Generator().manual_seed(0)


def _model(**sizes):
    torch.manual_seed(0)
    defaults = {"d_model": 16, "num_heads": 2, "d_ff": 32, "num_layers": 2, "dropout": 0.0}
    return TransformerClassifier(50, 5, 32, **{**defaults, **sizes}).eval()


def _attention_weights(model, ids):
    """Each block's attention weights ``(batch, num_heads, seq, seq)``, captured by hooks."""
    captured = []
    hooks = [
        block.self_attn.register_forward_hook(lambda m, i, out: captured.append(out[1]))
        for block in model.encoder.layers
    ]
    try:
        logits = model(ids)
    finally:
        for hook in hooks:
            hook.remove()
    return logits, captured


# The original bugs ------------------------------------------------------------------------


def test_a_model_built_from_the_data_has_one_output_per_class():
    labels = [0, 1, 2, 3, 4, 4, 3]
    model = build_classifier(50, labels, 32, d_model=16, num_heads=2, d_ff=32).eval()
    assert model.num_classes == 5 and model.head.out_features == 5
    for batch in (1, 3, 32):  # the original took num_classes from a batch of 32
        ids = torch.randint(3, 50, (batch, 7))
        assert model(ids).shape == (batch, 5)


def test_a_model_built_from_a_loaded_review_file_has_five_outputs(tmp_path):
    from course_utils.data import load_yelp

    reviews = tmp_path / "reviews.csv"
    reviews.write_text("label,text\n" + "".join(f'{i % 5},"{SENTENCES[i]}"\n' for i in range(10)))
    frame = load_yelp("train", path=reviews)
    tokenizer = train_tokenizer(frame["text"], vocab_size=100, min_frequency=1)
    ids = pad_batch(encode_reviews(tokenizer, frame["text"], 16))  # (10, seq)
    model = build_classifier(tokenizer.get_vocab_size(), frame["label"], 16, d_model=16)
    assert model.eval()(ids).shape == (10, 5)
    assert model.max_len == 16 and model.embedding.num_embeddings == tokenizer.get_vocab_size()


def test_build_classifier_rejects_labels_that_are_not_class_numbers():
    with pytest.raises(ValueError, match="labels"):
        build_classifier(50, [], 32)
    with pytest.raises(ValueError, match="labels"):
        build_classifier(50, [-1, 2], 32)


def test_positions_vary_along_the_sequence_axis_of_a_batch_first_batch():
    model = _model()
    x = torch.zeros(3, 6, 16)  # (batch, seq, d_model)
    encoded = model.positional(x)
    table = model.positional.table
    torch.testing.assert_close(encoded, table[:6].expand(3, 6, 16))
    assert not torch.allclose(encoded[:, 0], encoded[:, 1])  # differ along seq
    torch.testing.assert_close(encoded[0], encoded[2])  # identical along batch


def test_copies_of_one_review_get_the_same_logits_and_word_order_matters():
    model = _model()
    review = torch.tensor([5, 9, 14, 22, 7, 31])
    logits = model(review.expand(4, -1))
    # Positions along the batch axis (the original bug) would make these rows differ.
    torch.testing.assert_close(logits, logits[:1].expand(4, -1))
    shuffled = model(review.flip(0)[None])
    assert not torch.allclose(logits[:1], shuffled, atol=1e-4)


def test_padding_changes_neither_attention_of_real_tokens_nor_pooled_vector_nor_logits():
    model = _model()
    review = torch.tensor([[5, 9, 14, 22]])
    alone_logits, alone_weights = _attention_weights(model, review)
    padded = torch.tensor([[5, 9, 14, 22, 0, 0, 0], [3, 4, 5, 6, 7, 8, 9]])
    padded_logits, padded_weights = _attention_weights(model, padded)
    torch.testing.assert_close(padded_logits[:1], alone_logits, atol=1e-5, rtol=1e-5)
    for alone, with_padding in zip(alone_weights, padded_weights, strict=True):
        real = with_padding[0, :, :4]  # the real queries of the padded review
        torch.testing.assert_close(real[..., :4], alone[0], atol=1e-6, rtol=1e-5)
        assert torch.count_nonzero(real[..., 4:]) == 0  # no weight at all on padding


def test_masked_mean_pool_ignores_whatever_the_padding_holds(generator):
    hidden = torch.randn(2, 5, 4, generator=generator)
    mask = padding_mask(torch.tensor([3, 5]), 5)
    garbage = hidden.clone()
    garbage[0, 3:] = 1e4
    pooled = masked_mean_pool(garbage, mask)
    torch.testing.assert_close(pooled[0], hidden[0, :3].mean(dim=0))
    torch.testing.assert_close(pooled[1], hidden[1].mean(dim=0))
    torch.testing.assert_close(masked_mean_pool(hidden, mask), pooled)


def test_masked_mean_pool_gives_zeros_for_a_review_without_tokens_and_checks_inputs():
    pooled = masked_mean_pool(torch.ones(1, 3, 2), torch.zeros(1, 3, dtype=torch.bool))
    assert torch.equal(pooled, torch.zeros(1, 2))
    with pytest.raises(TypeError, match="bool"):
        masked_mean_pool(torch.ones(1, 3, 2), torch.ones(1, 3))
    with pytest.raises(ValueError, match="mask"):
        masked_mean_pool(torch.ones(1, 3, 2), torch.ones(3, 1, dtype=torch.bool))


def test_cls_pooling_reads_the_first_token_and_is_also_padding_proof():
    model = _model(pooling="cls")
    short = model(torch.tensor([[2, 9, 14]]))
    padded = model(torch.tensor([[2, 9, 14, 0, 0], [2, 5, 6, 7, 8]]))
    torch.testing.assert_close(padded[:1], short, atol=1e-5, rtol=1e-5)


def test_model_arguments_are_validated():
    with pytest.raises(ValueError, match="pooling"):
        TransformerClassifier(50, 5, 32, pooling="max")
    with pytest.raises(ValueError, match="pad_id"):
        TransformerClassifier(50, 5, 32, pad_id=50)
    with pytest.raises(ValueError, match="input_ids"):
        classifier_forward(_model(), torch.zeros(2, 3, 4, dtype=torch.long))


def test_embeddings_start_at_unit_scale_after_the_square_root_factor():
    model = TransformerClassifier(5000, 5, 32, d_model=64)
    scaled = model.embedding.weight[1:] * 64**0.5
    assert 0.9 < scaled.std().item() < 1.1  # comparable to the positional table's ±1
    assert torch.count_nonzero(model.embedding.weight[0]) == 0  # the padding row
    assert count_parameters(model) == sum(p.numel() for p in model.parameters())


# Checkers ---------------------------------------------------------------------------------


def _hint(mistakes, name):
    return next(m.hint for m in mistakes if m.name == name)


def test_6_1_rejects_pooling_over_padding_and_the_wrong_polarity():
    def plain_mean(hidden, mask):
        return hidden.mean(dim=1)

    def inverted(hidden, mask):  # written differently from the checker's own version
        blocked = (mask == 0).float().unsqueeze(-1)
        return (hidden * blocked).sum(1) / blocked.sum(1)

    with pytest.raises(CheckFailed) as failure:
        check("6.1", plain_mean)
    assert _hint(POOL_MISTAKES, "mean over the padding too") in str(failure.value)
    with pytest.raises(CheckFailed) as failure:
        check("6.1", inverted)
    assert _hint(POOL_MISTAKES, "mask inverted") in str(failure.value)


def test_6_1_accepts_another_correct_pooling(capsys):
    def pool(hidden, mask):
        weights = mask.float() / mask.float().sum(dim=1, keepdim=True)  # (batch, seq)
        return torch.einsum("bs,bsd->bd", weights, hidden)

    check("6.1", pool)
    assert capsys.readouterr().out.startswith("✓ 6.1")


def test_6_2_rejects_unmasked_padding_the_wrong_polarity_and_batch_axis_positions():
    def unmasked(model, input_ids):
        x = model.positional(model.embedding(input_ids) * model.d_model**0.5)
        x = model.encoder(model.dropout(x))
        keep = input_ids != model.pad_id
        pooled = x[:, 0] if model.pooling == "cls" else masked_mean_pool(x, keep)
        return model.head(model.dropout(pooled))

    for name, submission in (
        ("no attention mask", unmasked),
        ("attention mask inverted", _flawed(attention_mask="inverted")),
        ("pooled over the padding", _flawed(pooling_mask="all")),
        ("positions on the batch axis", _flawed(batch_positions=True)),
    ):
        with pytest.raises(CheckFailed) as failure:
            check("6.2", submission)
        assert _hint(FORWARD_MISTAKES, name) in str(failure.value), name


def _flawed(**flaw):
    from course_utils.checkers.classifier import _flawed_forward

    return lambda model, input_ids: _flawed_forward(model, input_ids, **flaw)


# Tokenizer --------------------------------------------------------------------------------


def test_tokenizer_trains_offline_with_the_special_tokens_first(tmp_path):
    tokenizer = train_tokenizer(SENTENCES, vocab_size=120, min_frequency=1)
    assert [tokenizer.token_to_id(t) for t in (PAD, UNK, CLS)] == [0, 1, 2]
    assert tokenizer.get_vocab_size() <= 120
    # Lowercased; with so small a vocabulary, words are split into ##-marked pieces.
    tokens = tokenizer.encode("WORST Pizza").tokens
    assert tokens == tokenizer.encode("worst pizza").tokens
    assert any(t.startswith("##") for t in tokens)
    assert tokenizer.decode(tokenizer.encode("worst pizza").ids) == "worst pizza"
    tokenizer.save(str(tmp_path / "tok.json"))
    assert load_tokenizer(tmp_path / "tok.json").encode("cold pasta").ids == (
        tokenizer.encode("cold pasta").ids
    )
    with pytest.raises(FileNotFoundError):
        load_tokenizer(tmp_path / "missing.json")


def test_a_trained_tokenizer_is_saved_and_reused(tmp_path, monkeypatch):
    from course_utils import classifier_tokenizer as module

    first = train_or_load_tokenizer(SENTENCES, 120, folder=tmp_path, min_frequency=1)
    assert len(list(tmp_path.glob("tokenizer-*.json"))) == 1

    def no_training(*args, **kwargs):
        raise AssertionError("the saved tokenizer should have been loaded")

    monkeypatch.setattr(module, "train_tokenizer", no_training)
    again = train_or_load_tokenizer(SENTENCES, 120, folder=tmp_path, min_frequency=1)
    assert again.get_vocab() == first.get_vocab()
    with pytest.raises(AssertionError, match="should have been loaded"):
        train_or_load_tokenizer(SENTENCES[:-1], 120, folder=tmp_path, min_frequency=1)


def test_head_tail_keeps_the_beginning_and_the_end():
    ids = list(range(10))
    assert head_tail(ids, 4) == [0, 7, 8, 9]  # a quarter from the head, the rest from the tail
    assert head_tail(ids, 4, head=2) == [0, 1, 8, 9]
    assert head_tail(ids, 4, head=4) == [0, 1, 2, 3]
    assert head_tail(ids[:3], 4) == [0, 1, 2]
    with pytest.raises(ValueError, match="head"):
        head_tail(ids, 4, head=5)


def test_encode_reviews_truncates_adds_cls_and_never_returns_an_empty_review():
    tokenizer = train_tokenizer(SENTENCES, vocab_size=120, min_frequency=1)
    encoded = encode_reviews(tokenizer, [SENTENCES[0], ""], 6, cls=True)
    assert len(encoded[0]) == 6 and encoded[0][0] == tokenizer.token_to_id(CLS)
    assert encoded[1] == [tokenizer.token_to_id(CLS), tokenizer.token_to_id(UNK)]
    assert encode_reviews(tokenizer, [""], 6) == [[tokenizer.token_to_id(UNK)]]


def test_pad_batch_pads_to_the_longest_review_of_the_batch_only():
    batch = pad_batch([[5, 6, 7], [8]], pad_id=0)
    assert batch.tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch.dtype == torch.long
    with pytest.raises(ValueError):
        pad_batch([])


# Metrics ----------------------------------------------------------------------------------


def test_scores_and_confusion_matrix_on_a_small_example():
    true, pred = [0, 1, 2, 3, 4], [0, 1, 3, 3, 0]
    scores = classification_scores(true, pred)
    assert scores["accuracy"] == pytest.approx(0.6)
    assert scores["within_one"] == pytest.approx(0.8)  # only 4 → 0 is off by more than one
    # F1 per class: 1, 1, 0, 2/3, 0 (class 0 has precision 1/2, recall 1 → 2/3).
    assert scores["macro_f1"] == pytest.approx((2 / 3 + 1 + 0 + 2 / 3 + 0) / 5)
    matrix = confusion_matrix(true, pred, 5)
    assert matrix.sum() == 5 and matrix[4, 0] == 1 and matrix[2, 3] == 1
    assert np.trace(matrix) == 3
    with pytest.raises(ValueError):
        confusion_matrix([0, 5], [0, 1], 5)
    with pytest.raises(ValueError):
        classification_scores([0, 1], [0])


# The model from the learner's parts, in the lesson's own notebook -------------------------

LESSON = Path(__file__).resolve().parent.parent / "lessons" / "06_yelp_classifier.py"


def _record_cell(stubbed: str | None) -> str:
    """Kernel code that passes every check before lesson 06 with learner-side copies.

    Each part is a function or class defined in the kernel (so it is recorded by value,
    as a learner's is), behaving like the course's reference; ``stubbed`` names one part
    left as an untouched stub.
    """
    return f"""
    import functools
    from course_utils.exercises import EXERCISES, check
    from course_utils.parts import PARTS

    for name, exercise in PARTS.items():
        if exercise == "6.1":
            continue  # lesson 06 records this one itself
        reference = EXERCISES[exercise].reference
        if name == {stubbed!r} and isinstance(reference, type):
            def __init__(self, *args, **kwargs):
                raise NotImplementedError
            mine = type(reference.__name__, (reference,), {{"__init__": __init__}})
        elif name == {stubbed!r}:
            def mine(*args, **kwargs):
                raise NotImplementedError
        elif isinstance(reference, type):
            mine = type(reference.__name__, (reference,), {{"__module__": "__main__"}})
        else:
            mine = functools.wraps(reference)(lambda *a, _f=reference, **k: _f(*a, **k))
        try:
            check(exercise, mine)
        except NotImplementedError:
            pass
    """


def _lesson_cells_up_to_the_assembled_model() -> list[str]:
    """The solution notebook's code cells, up to the first model built from the parts."""
    import jupytext

    notebook = jupytext.read(LESSON)
    cells = []
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        source = "\n".join(
            line
            for line in cell.source.splitlines()
            if "### BEGIN" not in line and "### END" not in line
        )
        cells.append(source)
        if 'parts="yours"' in source:
            return cells
    raise AssertionError("lesson 06 never builds a model from the learner's parts")


PROBE = """
from course_utils import parts as _parts
layer = model.encoder.layers[0]
print("ORIGINS", {name: _parts.get(name).origin for name in _parts.PARTS})
print("BLOCK", type(layer).__module__, type(layer).__name__)
print("ATTENTION", type(layer.self_attn).__module__)
print("POOL", model.pool.__module__)
"""


def _run_lesson_with_parts(tmp_path, stubbed):
    from test_parts import run_in_kernel

    env = {
        "COURSE_PARTS_DIR": str(tmp_path / "parts"),
        "COURSE_PARTS": "",
        "COURSE_QUICK": "1",
        "COURSE_DATA_DIR": str(tmp_path / "cache"),
        "MPLBACKEND": "Agg",
    }
    run_in_kernel([_record_cell(stubbed)], env)
    outputs = run_in_kernel([*_lesson_cells_up_to_the_assembled_model(), PROBE], env, timeout=600)
    shown = next(text for text in outputs if "part" in text and "exercise" in text)
    return shown, outputs[-1]


def _table_row(table: str, name: str) -> str:
    return next(line for line in table.splitlines() if line.split()[:1] == [name])


@pytest.mark.slow
def test_lesson_06_assembles_a_model_of_only_your_parts(tmp_path):
    table, probe = _run_lesson_with_parts(tmp_path, stubbed=None)
    for name in PARTS:
        assert "yours" in _table_row(table, name), table
    assert "'reference'" not in probe  # every part the learner's
    assert "BLOCK __main__ EncoderBlock" in probe  # the learner's block class, as recorded
    assert "POOL __main__" in probe  # the masked_mean_pool of the notebook's exercise 6.1


@pytest.mark.slow
def test_lesson_06_falls_back_for_a_stubbed_part_and_says_so(tmp_path):
    table, probe = _run_lesson_with_parts(tmp_path, stubbed="encoder_block")
    row = _table_row(table, "encoder_block")
    assert "reference" in row and "stub" in row, table
    for name in set(PARTS) - {"encoder_block"}:
        assert "yours" in _table_row(table, name), table
    # The reference block, built around the learner's own multi-head attention.
    assert "BLOCK course_utils.encoder EncoderBlock" in probe
    assert "ATTENTION __main__" in probe


@pytest.fixture
def learner_parts(tmp_path, monkeypatch):
    """An empty record of the learner's parts, switched on."""
    from course_utils import parts

    monkeypatch.setenv("COURSE_PARTS_DIR", str(tmp_path / "parts"))
    monkeypatch.delenv("COURSE_PARTS", raising=False)
    parts._loaded.clear()
    yield parts
    parts._loaded.clear()


def test_a_classifier_of_your_parts_uses_your_pooling_and_positions(learner_parts):
    from course_utils.positional import sinusoidal_positional_encoding

    def my_pool(hidden, mask):
        return masked_mean_pool(hidden, mask)

    def my_table(max_len, d_model):
        return sinusoidal_positional_encoding(max_len, d_model)

    check("6.1", my_pool)
    check("5.1", my_table)
    sizes = {"d_model": 16, "num_heads": 2, "d_ff": 32, "dropout": 0.0}
    torch.manual_seed(0)
    mine = build_classifier(50, [0, 1, 2, 3, 4], 32, parts="yours", **sizes).eval()
    torch.manual_seed(0)
    reference = build_classifier(50, [0, 1, 2, 3, 4], 32, **sizes).eval()
    ids = torch.randint(3, 50, (3, 9))
    torch.testing.assert_close(mine(ids), reference(ids))  # same maths, same weights
    assert mine.pool is learner_parts.get("pooling").impl and mine.pool.__name__ == "my_pool"
    assert reference.pool is masked_mean_pool
    assert learner_parts.get("positional_encoding").origin == "yours"
    with pytest.raises(ValueError, match="parts"):
        build_classifier(50, [0, 1], 32, parts="mine")


def test_the_positional_table_module_adds_rows_along_the_sequence_axis():
    from course_utils.classifier import PositionalTable

    table = torch.arange(12.0).reshape(6, 2)
    out = PositionalTable(table)(torch.zeros(3, 4, 2))
    torch.testing.assert_close(out, table[:4].expand(3, 4, 2))
    assert "table" not in PositionalTable(table).state_dict()  # fixed, never saved
    with pytest.raises(ValueError, match="max_len, d_model"):
        PositionalTable(torch.zeros(2, 3, 4))
