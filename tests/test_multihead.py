"""Multi-head attention (lesson 03): equal to nn.MultiheadAttention, and its checkers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_utils.attention import (
    MultiHeadAttention,
    causal_mask,
    load_from_torch,
    merge_heads,
    padding_mask,
    split_heads,
)
from course_utils.checking import CheckFailed
from course_utils.exercises import check

ATOL = 1e-5


@pytest.fixture
def generator():
    return torch.Generator().manual_seed(0)


def _torch_pair(d_model=16, num_heads=4):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        layer = nn.MultiheadAttention(d_model, num_heads, batch_first=True)
        with torch.no_grad():  # non-zero biases, so a bias mix-up cannot hide
            layer.in_proj_bias.normal_()
            layer.out_proj.bias.normal_()
    return layer.eval(), MultiHeadAttention.from_torch(layer).eval()


def _compare(ours, theirs):
    (out, weights), (out_t, weights_t) = ours, theirs
    assert out.shape == out_t.shape and weights.shape == weights_t.shape
    torch.testing.assert_close(out, out_t, atol=ATOL, rtol=0)
    torch.testing.assert_close(weights, weights_t, atol=ATOL, rtol=0)


def test_equals_torch_without_mask(generator):
    layer, ours = _torch_pair()
    x = torch.randn(3, 5, 16, generator=generator)
    _compare(ours(x), layer(x, x, x, average_attn_weights=False))


def test_equals_torch_with_padding_mask(generator):
    layer, ours = _torch_pair()
    x = torch.randn(3, 6, 16, generator=generator)
    keep = padding_mask(torch.tensor([6, 4, 1]), 6)  # (batch, seq), True at real tokens
    blocked = ~keep  # PyTorch's key_padding_mask: True = padding, may NOT attend
    _compare(
        ours(x, mask=keep[:, None, None, :]),
        layer(x, x, x, key_padding_mask=blocked, average_attn_weights=False),
    )


def test_equals_torch_with_causal_mask(generator):
    layer, ours = _torch_pair()
    x = torch.randn(2, 7, 16, generator=generator)
    allowed = causal_mask(7)
    _compare(ours(x, mask=allowed), layer(x, x, x, attn_mask=~allowed, average_attn_weights=False))


def test_equals_torch_with_causal_and_padding_masks(generator):
    layer, ours = _torch_pair(12, 3)
    x = torch.randn(2, 5, 12, generator=generator)
    keep = padding_mask(torch.tensor([5, 3]), 5)
    both = causal_mask(5) & keep[:, None, None, :]  # (batch, 1, seq_q, seq_k)
    _compare(
        ours(x, mask=both),
        layer(
            x, x, x, attn_mask=~causal_mask(5), key_padding_mask=~keep, average_attn_weights=False
        ),
    )


def test_cross_attention_equals_torch(generator):
    layer, ours = _torch_pair()
    query = torch.randn(2, 3, 16, generator=generator)
    memory = torch.randn(2, 8, 16, generator=generator)
    out, weights = ours(query, memory)
    assert weights.shape == (2, 4, 3, 8)
    _compare((out, weights), layer(query, memory, memory, average_attn_weights=False))


def test_key_and_value_default_to_query(generator):
    _, ours = _torch_pair()
    x = torch.randn(2, 4, 16, generator=generator)
    torch.testing.assert_close(ours(x)[0], ours(x, x, x)[0])
    memory = torch.randn(2, 6, 16, generator=generator)
    torch.testing.assert_close(ours(x, memory)[0], ours(x, memory, memory)[0])


def test_weights_rows_sum_to_one_and_masked_keys_get_zero(generator):
    _, ours = _torch_pair()
    x = torch.randn(2, 5, 16, generator=generator)
    keep = padding_mask(torch.tensor([5, 2]), 5)
    _, weights = ours(x, mask=keep[:, None, None, :])
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 4, 5))
    assert bool((weights[1, :, :, 2:] == 0).all())


def test_split_then_merge_is_identity_and_heads_get_contiguous_features(generator):
    x = torch.randn(2, 5, 12, generator=generator)
    heads = split_heads(x, 3)
    assert heads.shape == (2, 3, 5, 4)
    torch.testing.assert_close(heads[1, 2, 4], x[1, 4, 8:12])  # head 2 owns features 8..11
    torch.testing.assert_close(merge_heads(heads), x)


@pytest.mark.parametrize(("d_model", "num_heads"), [(10, 3), (8, 0), (6, 12)])
def test_heads_must_divide_d_model(d_model, num_heads):
    with pytest.raises(ValueError, match=f"num_heads={num_heads}"):
        MultiHeadAttention(d_model, num_heads)
    with pytest.raises(ValueError, match=f"d_model={d_model}"):
        split_heads(torch.zeros(1, 2, d_model), num_heads)


def test_wrong_shapes_are_rejected():
    mha = MultiHeadAttention(8, 2)
    with pytest.raises(ValueError, match="query"):
        mha(torch.zeros(2, 3, 6))
    with pytest.raises(ValueError, match="x must be"):
        merge_heads(torch.zeros(2, 3, 8))


def test_from_torch_rejects_other_layers():
    with pytest.raises(TypeError):
        MultiHeadAttention.from_torch(nn.Linear(4, 4))
    with pytest.raises(ValueError):
        MultiHeadAttention.from_torch(nn.MultiheadAttention(8, 2, kdim=4, vdim=4))


def test_attention_dropout_only_in_training(generator):
    mha = MultiHeadAttention(8, 2, dropout=0.5)
    x = torch.randn(2, 4, 8, generator=generator)
    mha.eval()
    torch.testing.assert_close(mha(x)[0], mha(x)[0])
    mha.train()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        assert not torch.allclose(mha(x)[0], mha.eval()(x)[0])


# The checkers accept other correct ways of writing the same thing.


def _split_with_view_and_permute(x, num_heads):
    batch, seq, d_model = x.shape
    return x.view(batch, seq, num_heads, d_model // num_heads).permute(0, 2, 1, 3)


def _merge_with_permute_and_view(x):
    batch, num_heads, seq, d_head = x.shape
    return x.permute(0, 2, 1, 3).contiguous().view(batch, seq, num_heads * d_head)


class EinsumAttention(nn.Module):
    """A correct multi-head attention written without split_heads/merge_heads."""

    def __init__(self, d_model, num_heads, dropout=0.0):
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"{num_heads} does not divide {d_model}")
        self.num_heads = num_heads
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (
            nn.Linear(d_model, d_model) for _ in range(4)
        )
        self.drop = nn.Dropout(dropout)  # not the reference's name: masks follow call order

    def forward(self, query, key=None, value=None, mask=None):
        key = query if key is None else key
        value = key if value is None else value
        batch, seq_q, d_model = query.shape
        d_head = d_model // self.num_heads
        q = self.q_proj(query).unflatten(-1, (self.num_heads, d_head))
        k = self.k_proj(key).unflatten(-1, (self.num_heads, d_head))
        v = self.v_proj(value).unflatten(-1, (self.num_heads, d_head))
        scores = torch.einsum("bqhd,bkhd->bhqk", q, k) / d_head**0.5
        if mask is not None:
            scores = scores.masked_fill(~mask, -1e9)
        weights = scores.softmax(dim=-1)
        heads = torch.einsum("bhqk,bkhd->bqhd", self.drop(weights), v)
        heads = heads.reshape(batch, seq_q, d_model)
        return self.out_proj(heads), weights


def test_checkers_accept_other_correct_code(capsys):
    check("3.1", _split_with_view_and_permute)
    check("3.2", _merge_with_permute_and_view)
    check("3.3", EinsumAttention)
    assert capsys.readouterr().out.count("✓") == 3


def test_checker_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    check("3.3", MultiHeadAttention)
    torch.testing.assert_close(torch.rand(3), expected)


def test_checker_names_missing_parameters():
    class Renamed(nn.Module):
        def __init__(self, d_model, num_heads):
            super().__init__()
            self.w_q = nn.Linear(d_model, d_model)

    with pytest.raises(CheckFailed, match=r"no q_proj\.weight.*has w_q\.weight"):
        check("3.3", Renamed)


def test_checker_wants_a_value_error_not_an_assert():
    class Asserting(EinsumAttention):
        def __init__(self, d_model, num_heads, dropout=0.0):
            assert d_model % num_heads == 0
            super().__init__(d_model, num_heads, dropout)

    with pytest.raises(CheckFailed, match="raised AssertionError; raise a ValueError"):
        check("3.3", Asserting)


def test_checker_wants_the_class_not_an_instance():
    with pytest.raises(CheckFailed, match="pass your class itself"):
        check("3.3", MultiHeadAttention(8, 2))


class _FixedRate(EinsumAttention):
    def __init__(self, d_model, num_heads, dropout=0.0):
        super().__init__(d_model, num_heads)
        self.drop = nn.Dropout(0.1)  # the argument is ignored


class _SwitchesToTraining(EinsumAttention):
    def forward(self, query, key=None, value=None, mask=None):
        self.train()
        return super().forward(query, key, value, mask)


class _RandomInEvaluation(EinsumAttention):
    def forward(self, query, key=None, value=None, mask=None):
        output, weights = super().forward(query, key, value, mask)
        return nn.functional.dropout(output, 0.5, training=True), weights


@pytest.mark.parametrize(
    ("submission", "words"),
    [
        (_FixedRate, "pass the dropout argument on instead of a fixed rate"),
        (_SwitchesToTraining, "switched the module out of evaluation mode"),
        (_RandomInEvaluation, "random in evaluation mode"),
    ],
)
def test_checker_shares_the_module_checks_of_lesson_04(submission, words):
    # 3.3 runs through the same module_exercise as 4.2 and 4.3, with the same checks.
    with pytest.raises(CheckFailed, match=words):
        check("3.3", submission)


# Exercise 3.4: a catalogue of weight loaders learners write. Every wrong one is rejected,
# at least 80% with a sentence naming the mistake (the expected words), every valid one
# accepted.


def _loader(blocks, *, transpose=False, biases=True, out=True, out_bias=True, bias_blocks=None):
    """A learner-style loader: ``blocks(in_proj) -> (q, k, v)`` chooses how to split."""

    def load_from_torch(mha, layer):
        q_w, k_w, v_w = blocks(layer.in_proj_weight)
        q_b, k_b, v_b = (bias_blocks or blocks)(layer.in_proj_bias)
        with torch.no_grad():
            for proj, w, b in (
                (mha.q_proj, q_w, q_b),
                (mha.k_proj, k_w, k_b),
                (mha.v_proj, v_w, v_b),
            ):
                proj.weight.copy_(w.T if transpose else w)
                if biases:
                    proj.bias.copy_(b)
            if out:
                mha.out_proj.weight.copy_(layer.out_proj.weight)
                if out_bias:
                    mha.out_proj.bias.copy_(layer.out_proj.bias)
        return mha

    return load_from_torch


def _thirds(t):
    return t.chunk(3)


def _by_slices(t):
    d = t.shape[0] // 3
    return t[:d], t[d : 2 * d], t[2 * d :]


def _returns_nothing(mha, layer):
    _loader(_thirds)(mha, layer)


def _data_views(mha, layer):
    for proj, w, b in zip(
        (mha.q_proj, mha.k_proj, mha.v_proj),
        layer.in_proj_weight.chunk(3),
        layer.in_proj_bias.chunk(3),
        strict=True,
    ):
        proj.weight.data, proj.bias.data = w.data, b.data
    mha.out_proj.weight.data, mha.out_proj.bias.data = (
        layer.out_proj.weight.data,
        layer.out_proj.bias.data,
    )
    return mha


def _new_parameters(mha, layer):
    for proj, w, b in zip(
        (mha.q_proj, mha.k_proj, mha.v_proj),
        layer.in_proj_weight.chunk(3),
        layer.in_proj_bias.chunk(3),
        strict=True,
    ):
        proj.weight, proj.bias = nn.Parameter(w), nn.Parameter(b)
    mha.out_proj.weight, mha.out_proj.bias = layer.out_proj.weight, layer.out_proj.bias
    return mha


def _new_parameters_cloned(mha, layer):
    for proj, w, b in zip(
        (mha.q_proj, mha.k_proj, mha.v_proj),
        layer.in_proj_weight.chunk(3),
        layer.in_proj_bias.chunk(3),
        strict=True,
    ):
        proj.weight, proj.bias = nn.Parameter(w.detach().clone()), nn.Parameter(b.detach().clone())
    mha.out_proj.load_state_dict(layer.out_proj.state_dict())
    return mha


def _through_state_dict(mha, layer):
    d = layer.embed_dim
    state = {"out_proj.weight": layer.out_proj.weight, "out_proj.bias": layer.out_proj.bias}
    for i, name in enumerate(("q_proj", "k_proj", "v_proj")):
        state[f"{name}.weight"] = layer.in_proj_weight[i * d : (i + 1) * d]
        state[f"{name}.bias"] = layer.in_proj_bias[i * d : (i + 1) * d]
    mha.load_state_dict(state)
    return mha


def _out_transposed_only(mha, layer):
    _loader(_thirds)(mha, layer)
    with torch.no_grad():
        mha.out_proj.weight.copy_(layer.out_proj.weight.T)
    return mha


LOAD_WRONG = [  # (words the verdict should contain, "" when no hint is expected; loader)
    (
        "first d_model rows are q_proj's",
        _loader(lambda t: (t.chunk(3)[1], t.chunk(3)[0], t.chunk(3)[2])),
    ),
    ("swapped q's and v's", _loader(lambda t: t.chunk(3)[::-1])),
    ("swapped k's and v's", _loader(lambda t: (t.chunk(3)[0], t.chunk(3)[2], t.chunk(3)[1]))),
    ("without .T", _loader(_thirds, transpose=True)),
    ("not the biases", _loader(_thirds, biases=False)),
    (
        "another order than your weights",
        _loader(_thirds, bias_blocks=lambda t: (t.chunk(3)[1], t.chunk(3)[0], t.chunk(3)[2])),
    ),
    ("but not out_proj", _loader(_thirds, out=False)),
    ("not its bias", _loader(_thirds, out_bias=False)),
    ("the same block", _loader(lambda t: (t.chunk(3)[0],) * 3)),
    ("shares memory", _data_views),
    ("shares memory with PyTorch", _new_parameters),
    ("return the module you were given", _returns_nothing),
    ("out_proj's weight transposed", _out_transposed_only),
    ("", _loader(lambda t: t.chunk(3, dim=-1))),  # a crash in the learner's code
    ("not interleaved rows", _loader(lambda t: (t[0::3], t[1::3], t[2::3]))),
]

LOAD_VALID = [
    load_from_torch,
    _loader(_by_slices),
    _loader(lambda t: t.split(t.shape[0] // 3)),
    _new_parameters_cloned,
    _through_state_dict,
]


def test_catalogue_of_weight_loaders():
    assert len(LOAD_WRONG) >= 12 and len(LOAD_VALID) >= 4
    for loader in LOAD_VALID:
        check("3.4", loader)
    named, report = 0, []
    for words, loader in LOAD_WRONG:
        try:
            check("3.4", loader)
        except CheckFailed as failure:
            verdict = str(failure)
        except RuntimeError as crash:  # the learner's own error, with a note naming the call
            verdict = f"crash: {crash}"
        else:
            pytest.fail(f"3.4 accepted a wrong loader ({words})")
        if words and words in verdict:
            named += 1
        else:
            report.append(f"{words!r}: {verdict}")
    assert named / len(LOAD_WRONG) >= 0.8, "\n".join(report)


def test_loaded_layer_equals_torch_and_shares_no_memory(generator):
    layer, _ = _torch_pair()
    mine = load_from_torch(MultiHeadAttention(16, 4), layer).eval()
    x = torch.randn(2, 5, 16, generator=generator)
    _compare(mine(x), layer(x, x, x, average_attn_weights=False))
    with torch.no_grad():
        mine.q_proj.weight.zero_()
    assert layer.in_proj_weight.abs().sum() > 0
