"""Lesson 08: the decoder-only model, its loss, sampling, the key-value cache, training."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_utils import decoder
from course_utils.attention import merge_heads, scaled_dot_product_attention, split_heads
from course_utils.decoder import (
    DecoderLM,
    attend_with_cache,
    generate,
    next_token_loss,
    sample_next_token,
    time_per_token,
)
from course_utils.decoder_training import (
    UnigramModel,
    Vocabulary,
    brown_word_sentences,
    decoder_config,
    evaluate_loss,
    tokenize,
    trained_decoder,
)
from course_utils.encoder import EncoderBlock


def small_model(seed: int = 0, **sizes) -> DecoderLM:
    torch.manual_seed(seed)
    sizes = {"d_model": 16, "num_heads": 2, "num_layers": 2, "d_ff": 32, "max_len": 20} | sizes
    return DecoderLM(30, **sizes).eval()


def test_cached_attention_equals_the_last_row_of_pytorch_causal_attention():
    generator = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 7, 8, generator=generator) for _ in range(3))
    full = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (2, 3, 7, 8), the oracle
    output, key_cache, value_cache = attend_with_cache(
        q[:, :, -1:], k[:, :, -1:], v[:, :, -1:], k[:, :, :-1], v[:, :, :-1]
    )
    assert torch.allclose(output, full[:, :, -1:], atol=1e-6)
    assert torch.equal(key_cache, k) and torch.equal(value_cache, v)


def test_cached_attention_token_by_token_rebuilds_every_row():
    generator = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(1, 2, 5, 4, generator=generator) for _ in range(3))
    full = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    key_cache = value_cache = torch.zeros(1, 2, 0, 4)
    for t in range(5):
        row, key_cache, value_cache = attend_with_cache(
            q[:, :, t : t + 1], k[:, :, t : t + 1], v[:, :, t : t + 1], key_cache, value_cache
        )
        assert torch.allclose(row, full[:, :, t : t + 1], atol=1e-6)


def test_model_step_with_the_cache_equals_the_full_forward_pass():
    model = small_model()
    ids = torch.randint(4, 30, (2, 9), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        full = model(ids)  # (2, 9, 30)
        cache = None
        for t in range(ids.size(1)):
            logits, cache = model.step(ids[:, t], cache)
            assert torch.allclose(logits, full[:, t], atol=1e-5), f"position {t}"
    assert cache[0][0].shape == (2, 2, 9, 8)


class LearnerHeads(nn.Module):
    """Multi-head attention as lesson 03 asks for it: the four projections, no num_heads."""

    def __init__(self, reference: nn.Module):
        super().__init__()
        self.heads = reference.num_heads  # a name of the learner's own choosing
        self.q_proj, self.k_proj = reference.q_proj, reference.k_proj
        self.v_proj, self.out_proj = reference.v_proj, reference.out_proj

    def forward(self, query, key=None, value=None, mask=None):
        key = query if key is None else key
        value = key if value is None else value
        q, k, v = (
            split_heads(projection(x), self.heads)
            for projection, x in ((self.q_proj, query), (self.k_proj, key), (self.v_proj, value))
        )
        heads, weights = scaled_dot_product_attention(q, k, v, mask)
        return self.out_proj(merge_heads(heads)), weights


def test_the_cached_step_needs_only_the_sublayer_names_of_the_exercises():
    model = small_model()
    ids = torch.randint(4, 30, (1, 6), generator=torch.Generator().manual_seed(5))
    for block in model.blocks:
        block.self_attn = LearnerHeads(block.self_attn)
    with torch.no_grad():
        full, cache = model(ids), None
        for t in range(6):
            logits, cache = model.step(ids[:, t], cache)
            assert torch.allclose(logits, full[:, t], atol=1e-5)
    cached = generate(model, [2], 5, temperature=0)
    model.supports_cache = lambda: False  # blocks a cached step cannot read
    assert generate(model, [2], 5, temperature=0) == cached  # the same tokens, without the cache
    del model.supports_cache
    del model.blocks[0].norm2
    assert not model.supports_cache()
    with pytest.raises(AttributeError, match="use_cache=False"):
        model.step(ids[:, 0], None)


def test_model_is_causal():
    model = small_model()
    ids = torch.randint(4, 30, (1, 8), generator=torch.Generator().manual_seed(3))
    changed = ids.clone()
    changed[0, 5:] = 4
    with torch.no_grad():
        before, after = model(ids), model(changed)
    assert torch.allclose(before[:, :5], after[:, :5], atol=1e-6)
    assert not torch.allclose(before[:, 5:], after[:, 5:])


def test_model_loss_equals_the_loss_computed_by_hand():
    model = small_model()
    ids = torch.tensor([[2, 7, 9, 11, 3, 0, 0], [2, 5, 6, 8, 12, 13, 3]])  # 0 pads the first row
    with torch.no_grad():
        logits = model(ids)
        total, count = 0.0, 0
        for row in range(2):
            for t in range(6):
                target = int(ids[row, t + 1])
                if target == 0:
                    continue
                log_probs = logits[row, t].double().log_softmax(dim=-1)
                total -= float(log_probs[target])
                count += 1
        assert count == 10
        assert math.isclose(float(model.loss(ids)), total / count, rel_tol=1e-5)
        assert math.isclose(float(next_token_loss(logits, ids, 0)), total / count, rel_tol=1e-5)


def test_blocks_come_from_the_record_of_parts(monkeypatch):
    monkeypatch.setenv("COURSE_PARTS", "reference")
    model = small_model()
    assert all(isinstance(block, EncoderBlock) for block in model.blocks)
    assert all(block.norm_first for block in model.blocks)
    assert model.supports_cache()


def test_the_model_starts_close_to_the_unigram_model_when_its_bias_is_set():
    model = small_model(d_model=8)
    probabilities = torch.softmax(torch.randn(30, generator=torch.Generator().manual_seed(4)), 0)
    model.start_from_unigram(probabilities)
    ids = torch.tensor([[2, 5, 6, 9]])
    with torch.no_grad():
        predicted = model(ids).softmax(dim=-1)[0]  # (seq, 30)
        divergence = (probabilities * (probabilities / predicted).log()).sum(dim=-1)
        assert float(divergence.max()) < 0.01  # small initial weights: almost the unigram model
        model.head.weight.zero_()
        assert torch.allclose(model(ids).softmax(dim=-1)[0, -1], probabilities, atol=1e-6)
    with pytest.raises(ValueError, match="one probability per token"):
        model.start_from_unigram(torch.ones(5))


def test_sampling_follows_temperature_and_top_k_and_leaves_the_global_rng_alone():
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0, 3.0]]).repeat(40_000, 1)
    state = torch.get_rng_state()
    tokens = sample_next_token(logits, 0.5, 3, torch.Generator().manual_seed(0))
    assert torch.equal(state, torch.get_rng_state())
    assert tokens.shape == (40_000,) and tokens.dtype == torch.long
    expected = torch.softmax(torch.tensor([2.0, 1.0, -math.inf, -math.inf, 3.0]) / 0.5, dim=0)
    frequencies = torch.bincount(tokens, minlength=5).double() / len(tokens)
    assert torch.allclose(frequencies, expected.double(), atol=0.01)
    again = sample_next_token(logits, 0.5, 3, torch.Generator().manual_seed(0))
    assert torch.equal(tokens, again)
    greedy = sample_next_token(logits[:3], 1.0, 1, torch.Generator().manual_seed(1))
    assert greedy.tolist() == [4, 4, 4]
    with pytest.raises(ValueError, match="temperature"):
        sample_next_token(logits, 0.0, None, None)


def test_generate_with_and_without_the_cache_agree():
    model = small_model()
    greedy = generate(model, [2, 5], 12, temperature=0, use_cache=True)
    assert greedy == generate(model, [2, 5], 12, temperature=0, use_cache=False)
    sampled = [
        generate(
            model,
            [2],
            10,
            temperature=1.0,
            top_k=5,
            generator=torch.Generator().manual_seed(9),
            use_cache=cached,
        )
        for cached in (True, False)
    ]
    assert sampled[0] == sampled[1]
    assert len(generate(model, [2], 100, temperature=0)) == model.max_len - 1


def test_generate_stops_and_never_picks_a_banned_token():
    model = small_model()
    with torch.no_grad():
        model.head.bias.zero_()
        model.head.bias[7] = 50.0  # token 7 is by far the likeliest ...
    assert generate(model, [2], 5, temperature=0, stop_id=7) == [7]
    new = generate(model, [2], 8, temperature=1.0, banned_ids=[7], generator=torch.Generator())
    assert 7 not in new  # ... unless it is banned
    with pytest.raises(ValueError, match="at least one token"):
        generate(model, [], 3)
    with pytest.raises(ValueError, match="the model has 20"):
        generate(model, list(range(20)), 3)


def test_generate_runs_the_sampler_and_the_cached_attention_it_is_given():
    model = small_model()
    attended, sampled = [], []

    def my_attend(*args):
        attended.append(1)
        return decoder.attend_with_cache(*args)

    def my_sampler(logits, temperature, top_k, generator):
        sampled.append((temperature, top_k))
        return torch.full((logits.size(0),), 6, dtype=torch.long)

    new = generate(model, [2, 5], 4, temperature=0.7, top_k=3, sampler=my_sampler, attend=my_attend)
    assert new == [6, 6, 6, 6] and sampled == [(0.7, 3)] * 4
    assert len(attended) == len(model.blocks) * (2 + 3)  # the prompt's 2 tokens, 3 new fed back
    generate(model, [2, 5], 4, temperature=0, sampler=my_sampler)
    assert len(sampled) == 4  # greedy decoding takes the argmax, never the sampler


def test_time_per_token_times_each_step():
    model = small_model(max_len=40)
    for cached in (True, False):
        seconds = time_per_token(model, 12, use_cache=cached, repeats=2)
        assert len(seconds) == 12 and all(0 < s < math.inf for s in seconds)
    with pytest.raises(ValueError, match="positions"):
        time_per_token(model, 40, use_cache=True)


def test_vocabulary_round_trip_and_unknown_words():
    vocab = Vocabulary.build([["the", "cat", "sat", "."], ["the", "dog", "."]], 7)
    assert vocab.words[:4] == ["<pad>", "<unk>", "<s>", "</s>"]
    assert vocab.words[4:] == [".", "the", "cat"]  # by frequency, then alphabetically
    ids = vocab.encode("The cat barked.")
    assert ids == [2, 5, 6, 1, 4, 3]
    assert vocab.decode(ids) == "the cat <unk>."
    assert tokenize("Don't stop, Mr. Smith!") == ["don't", "stop", ",", "mr", ".", "smith", "!"]
    with pytest.raises(ValueError, match="must start with"):
        Vocabulary(["a", "b"])


def test_brown_words_are_the_corpus_sentences_lowercased():
    from course_utils.data import brown_corpus

    ours = brown_word_sentences(max_sentences=300)
    theirs = brown_corpus().sents()[:300]
    quotes = {"``": '"', "''": '"'}
    assert ours == [[quotes.get(w, w).lower() for w in sentence] for sentence in theirs]


def test_unigram_loss_is_the_cross_entropy_of_the_smoothed_counts():
    unigram = UnigramModel([[2, 4, 4, 5, 3], [2, 4, 3]], vocab_size=6)
    counts = torch.tensor([0, 1, 1, 3, 4, 2], dtype=torch.float)  # add-one; pad never a target
    expected = counts / counts.sum()
    assert torch.allclose(unigram.probabilities, expected)
    loss = -(expected[torch.tensor([4, 5, 3])].log().mean())
    assert math.isclose(unigram.loss([[2, 4, 5, 3]]), float(loss), rel_tol=1e-6)
    drawn = unigram.sample(50, torch.Generator().manual_seed(0), stop_id=3, banned=[1])
    assert 1 not in drawn and (drawn[-1] == 3 or len(drawn) == 50)


@pytest.mark.slow
def test_trained_model_beats_unigram_and_is_cached(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("COURSE_QUICK", "1")
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COURSE_PARTS", "reference")
    config = decoder_config()
    assert config.seconds <= 10  # the quick size
    first = trained_decoder(progress=False)
    record = first.record
    assert record["held_out_loss_final"] < record["unigram_loss"]
    assert math.isclose(
        evaluate_loss(first.model, first.held_out), record["held_out_loss_final"], rel_tol=1e-5
    )
    assert list(tmp_path.glob("models/brown-decoder-*.pt"))
    second = trained_decoder(progress=False)
    assert "Loaded the decoder trained earlier" in capsys.readouterr().out
    assert second.record == record
    for name, value in first.model.state_dict().items():
        assert torch.equal(value, second.model.state_dict()[name])


def test_decoder_parts_are_the_records_functions():
    from course_utils import parts

    made = decoder.decoder_parts()
    assert made["block"] is parts.encoder_block
    assert made["positions"] is parts.positional_encoding


def test_a_part_that_breaks_in_training_is_named(monkeypatch, tmp_path):
    from course_utils import decoder_training, parts

    monkeypatch.setenv("COURSE_QUICK", "1")
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))

    def broken_training(*args, **kwargs):
        raise ValueError("shapes do not fit")

    monkeypatch.setattr(decoder_training, "train_decoder", broken_training)
    monkeypatch.setattr(parts, "culprit", lambda error: "feed_forward")
    named = []
    monkeypatch.setattr(parts, "broken", lambda name, error: named.append(name) or f"{name} broke")
    with pytest.raises(RuntimeError, match="feed_forward broke"):
        trained_decoder(progress=False)
    assert named == ["feed_forward"]
    monkeypatch.setattr(parts, "culprit", lambda error: None)
    with pytest.raises(ValueError, match="shapes do not fit"):
        trained_decoder(progress=False)


def test_a_part_passed_anew_trains_anew_instead_of_loading(monkeypatch, tmp_path, capsys):
    from course_utils import decoder_training, parts

    monkeypatch.setenv("COURSE_QUICK", "1")
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COURSE_PARTS", "reference")
    trainings = []
    monkeypatch.setattr(
        decoder_training,
        "train_decoder",
        lambda *args, **kwargs: trainings.append(1) or {"seconds": 0},
    )
    trained_decoder(progress=False)
    trained_decoder(progress=False)
    assert len(trainings) == 1  # the same parts: the saved model loads
    assert "Loaded the decoder trained earlier" in capsys.readouterr().out
    by_reference = parts.provenance

    def one_part_yours(names):
        return [
            (name, "yours", "2026-12-01 09:00") if name == "feed_forward" else (name, *rest)
            for name, *rest in by_reference(names)
        ]

    monkeypatch.setattr(parts, "provenance", one_part_yours)
    trained_decoder(progress=False)
    assert len(trainings) == 2  # other code in the blocks: trained anew, saved apart
    assert len(list(tmp_path.glob("models/brown-decoder-*.pt"))) == 2


def test_provenance_says_whose_each_part_is(monkeypatch):
    from course_utils import parts

    monkeypatch.setenv("COURSE_PARTS", "reference")
    rows = parts.provenance(("attention", "encoder_block"))
    assert rows == [("attention", "reference", ""), ("encoder_block", "reference", "")]
