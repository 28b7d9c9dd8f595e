"""The small masked LM: its tokenizer, BERT's masking recipe, the export to Hugging Face
(same logits, loaded by path through the lesson's loader), and training with its cache."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from course_utils import mlm, mlm_training, pretrained
from course_utils.encoder import EncoderBlock
from course_utils.mlm import SPECIAL_TOKENS, MaskedLanguageModel, mask_tokens, to_huggingface

VOCAB = [*SPECIAL_TOKENS, *"the a cat dog sat on mat ##s . home ##town river bank".split()]


def _random_model(vocab_size: int, seed: int = 0) -> MaskedLanguageModel:
    """A small model with large random weights, so every parameter visibly matters."""
    generator = torch.Generator().manual_seed(seed)
    model = MaskedLanguageModel(vocab_size, d_model=16, num_heads=2, num_layers=2, d_ff=32)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.5)
    return model.eval()


def test_wordpiece_tokenizer_marks_later_pieces_and_adds_specials():
    tokenizer = mlm.wordpiece_tokenizer(VOCAB)
    ids = tokenizer("The cats sat on a mat.")["input_ids"]
    tokens = tokenizer.convert_ids_to_tokens(ids)
    assert tokens == ["[CLS]", "the", "cat", "##s", "sat", "on", "a", "mat", ".", "[SEP]"]
    assert [tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS] == [0, 1, 2, 3, 4]
    assert tokenizer.mask_token_id == 4 and tokenizer.pad_token_id == 0


def test_wordpiece_tokenizer_rejects_a_vocabulary_without_the_specials():
    with pytest.raises(ValueError, match="must start with"):
        mlm.wordpiece_tokenizer(["the", "cat"])


def test_train_wordpiece_learns_frequent_words_whole_and_splits_rare_ones():
    texts = ["the river bank was near the river"] * 50 + ["a riverbank"]
    tokenizer = mlm.train_wordpiece(texts, vocab_size=60)
    assert tokenizer.tokenize("the river") == ["the", "river"]
    assert len(tokenizer.tokenize("riverbanks")) > 1
    assert tokenizer.convert_ids_to_tokens([0, 4]) == ["[PAD]", "[MASK]"]


def test_mask_tokens_follows_bert_recipe():
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(5, 1000, (200, 500), generator=generator)
    maskable = torch.ones_like(input_ids, dtype=torch.bool)
    maskable[:, :3] = False  # e.g. [CLS] and padding: never chosen
    inputs, labels = mask_tokens(
        input_ids, maskable, mask_id=4, vocab_size=1000, generator=generator
    )
    chosen = labels != -100
    assert not chosen[:, :3].any()
    assert torch.equal(labels[chosen], input_ids[chosen])
    assert torch.equal(inputs[~chosen], input_ids[~chosen])  # unchosen tokens stay as they were
    assert abs(chosen[maskable].float().mean().item() - 0.15) < 0.005
    as_mask = (inputs[chosen] == 4).float().mean().item()
    unchanged = (inputs[chosen] == input_ids[chosen]).float().mean().item()
    replaced = 1 - as_mask - unchanged
    assert abs(as_mask - 0.8) < 0.01 and abs(unchanged - 0.1) < 0.01 and abs(replaced - 0.1) < 0.01
    assert inputs[chosen].min() >= 4  # random replacements are ordinary tokens, never specials


def test_mask_tokens_rejects_a_non_boolean_maskable():
    ids = torch.ones(2, 3, dtype=torch.long)
    with pytest.raises(ValueError, match="maskable"):
        mask_tokens(ids, torch.ones(2, 3), mask_id=4, vocab_size=10)


def test_the_model_is_built_from_the_course_encoder_blocks():
    model = MaskedLanguageModel(50, d_model=16, num_heads=2, num_layers=3, d_ff=32)
    blocks = model.encoder.layers
    assert len(blocks) == 3 and all(isinstance(b, EncoderBlock) for b in blocks)
    assert not blocks[0].norm_first  # BERT is post-norm
    assert isinstance(blocks[0].feed_forward.activation, torch.nn.GELU)
    # the decoder of the head is the word embedding matrix (tied)
    hidden = torch.randn(3, 16)
    expected = model.head_norm(model.head_activation(model.head_dense(hidden)))
    expected = expected @ model.word_embeddings.weight.T + model.head_bias
    assert torch.allclose(model.predict(hidden), expected)


def test_the_exported_bert_gives_the_same_logits():
    tokenizer = mlm.wordpiece_tokenizer(VOCAB)
    model = _random_model(len(VOCAB))
    exported = to_huggingface(model, tokenizer)
    batch = tokenizer(["the cats sat on a mat .", "a dog"], padding=True, return_tensors="pt")
    with torch.no_grad():
        ours = model(batch["input_ids"], batch["attention_mask"]).logits
        theirs = exported(**batch).logits
    real = batch["attention_mask"].bool()
    assert ours.abs().max() > 1  # far from uniform: a weak test would pass anything
    torch.testing.assert_close(ours[real], theirs[real], atol=1e-5, rtol=1e-5)


def _tiny_bert_folder(tmp_path, vocab_size: int):
    """A random BertForMaskedLM with large weights, written by ``save_pretrained``."""
    from transformers import BertConfig, BertForMaskedLM

    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=24,
        num_hidden_layers=2,
        num_attention_heads=3,
        intermediate_size=40,
        max_position_embeddings=32,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)
        model = BertForMaskedLM(config)
        with torch.no_grad():  # far from BERT's small init, so that every weight matters
            for parameter in model.parameters():
                parameter.add_(torch.randn(parameter.shape) * 0.3)
    model.save_pretrained(tmp_path / "tiny-bert")
    return tmp_path / "tiny-bert"


def _learner_style_block(d_model, num_heads, d_ff, **settings):
    """A block built as a learner's would be (the parts' factory, with COURSE_PARTS=reference)."""
    from course_utils import parts

    return parts.encoder_block(d_model, num_heads, d_ff, **settings)


def test_real_bert_weights_load_into_the_course_blocks_with_identical_logits(tmp_path, monkeypatch):
    """The reverse of the export: BertForMaskedLM's weights in a model of encoder blocks."""
    from transformers import BertForMaskedLM

    monkeypatch.setenv("COURSE_PARTS", "reference")
    tokenizer = mlm.wordpiece_tokenizer(VOCAB)
    folder = _tiny_bert_folder(tmp_path, len(VOCAB))
    theirs = BertForMaskedLM.from_pretrained(folder).eval()
    ours = mlm.from_huggingface(theirs, block_factory=_learner_style_block)
    assert isinstance(ours, MaskedLanguageModel) and not ours.training
    batch = tokenizer(["the cats sat on a mat .", "a dog"], padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = theirs(**batch).logits
        got = ours(batch["input_ids"], batch["attention_mask"]).logits
    real = batch["attention_mask"].bool()
    assert expected.abs().max() > 1  # large random weights: every one of them matters
    torch.testing.assert_close(got[real], expected[real], atol=1e-5, rtol=1e-5)
    # the labels give BERT's own loss
    labels = torch.full_like(batch["input_ids"], -100)
    labels[0, 2] = batch["input_ids"][0, 2]
    with torch.no_grad():
        loss = theirs(**batch, labels=labels).loss
        torch.testing.assert_close(
            ours(batch["input_ids"], batch["attention_mask"], labels).loss, loss
        )


def test_loading_bert_names_a_block_that_lacks_a_sublayer(tmp_path):
    from transformers import BertForMaskedLM

    theirs = BertForMaskedLM.from_pretrained(_tiny_bert_folder(tmp_path, len(VOCAB)))

    class Renamed(EncoderBlock):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.ffn = self.feed_forward
            del self.feed_forward

    with pytest.raises(AttributeError, match=r"feed_forward\.linear1"):
        mlm.from_huggingface(theirs, block_factory=Renamed)
    with pytest.raises(TypeError, match="BertForMaskedLM"):
        mlm.from_huggingface(torch.nn.Linear(2, 2))


def test_export_leaves_the_random_generator_alone():
    model = _random_model(len(VOCAB))
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    to_huggingface(model)
    assert torch.equal(torch.rand(3), expected)


def test_export_rejects_other_models():
    with pytest.raises(TypeError, match="MaskedLanguageModel"):
        to_huggingface(torch.nn.Linear(2, 2))


def test_a_saved_model_loads_by_path_through_the_lessons_loader(tmp_path, monkeypatch):
    monkeypatch.setattr(pretrained, "_MASKED_LMS", {})
    tokenizer = mlm.wordpiece_tokenizer(VOCAB)
    model = _random_model(len(VOCAB), seed=3)
    to_huggingface(model, tokenizer).save_pretrained(tmp_path / "tiny")
    tokenizer.save_pretrained(tmp_path / "tiny")

    loaded_tokenizer, loaded = pretrained.load_masked_lm(tmp_path / "tiny", device="cpu")
    ids = loaded_tokenizer("the cats sat on the mat .", return_tensors="pt")["input_ids"]
    assert loaded_tokenizer.convert_ids_to_tokens(ids[0].tolist())[2:4] == ["cat", "##s"]
    assert loaded_tokenizer.mask_token == "[MASK]"
    with torch.no_grad():
        expected = model(ids).logits
        torch.testing.assert_close(loaded(input_ids=ids).logits, expected, atol=1e-5, rtol=1e-5)
    assert pretrained.load_masked_lm(str(tmp_path / "tiny"), device="cpu").model is loaded


def _tiny_config(**changes) -> mlm_training.MLMConfig:
    sizes = dict(
        vocab_size=300,
        d_model=16,
        num_heads=2,
        num_layers=1,
        d_ff=32,
        max_len=64,
        max_sentences=400,
        held_out=50,
        steps=100,
        batch_size=16,
        warmup_steps=5,
        learning_rate=3e-3,
    )
    return mlm_training.MLMConfig(**{**sizes, **changes})


def test_the_config_key_changes_with_every_setting():
    base = _tiny_config()
    assert base.key() == _tiny_config().key()
    keys = {base.key()}
    for field in dataclasses.fields(mlm_training.MLMConfig):
        value = getattr(base, field.name)
        changed = 0.5 if isinstance(value, float) else 7 if value is None else value + 1
        keys.add(dataclasses.replace(base, **{field.name: changed}).key())
    assert len(keys) == 1 + len(dataclasses.fields(mlm_training.MLMConfig))  # all different


@pytest.mark.slow
def test_small_masked_lm_trains_saves_and_is_reused(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(pretrained, "_MASKED_LMS", {})
    config = _tiny_config()
    folder = mlm_training.small_masked_lm(tmp_path / "mlm", config, progress=False)
    assert "Trained the small masked LM" in capsys.readouterr().out
    record = json.loads((folder / "training.json").read_text())
    assert record["config"]["steps"] == 100 and len(record["losses"]) == 2
    assert record["losses"][-1] < record["losses"][0]  # it learned something
    assert 0 < record["held_out"]["accuracy"] < 1
    tokenizer, model = pretrained.load_masked_lm(folder, device="cpu")
    assert model.config.num_hidden_layers == 1 and len(tokenizer) == config.vocab_size

    def no_training(*args, **kwargs):
        raise AssertionError("a saved model must be reused, not trained again")

    monkeypatch.setattr(mlm_training, "train_masked_lm", no_training)
    assert mlm_training.small_masked_lm(tmp_path / "mlm", config) == folder
    assert "Reusing" in capsys.readouterr().out


def test_default_config_is_tiny_under_course_quick(monkeypatch):
    monkeypatch.setenv("COURSE_QUICK", "1")
    quick = mlm_training.small_masked_lm_config()
    monkeypatch.setenv("COURSE_QUICK", "0")
    full = mlm_training.small_masked_lm_config()
    assert quick.steps < full.steps and quick.d_model < full.d_model
