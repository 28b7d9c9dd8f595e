"""Positional encodings (lesson 05): the table's formula and properties, and the checkers."""

from __future__ import annotations

import math

import pytest
import torch

from course_utils.attention import MultiHeadAttention
from course_utils.exercises import check
from course_utils.positional import (
    LearnedPositionalEmbedding,
    SinusoidalPositionalEncoding,
    add_positional_encoding,
    sinusoidal_positional_encoding,
)


@pytest.mark.parametrize(("max_len", "d_model"), [(12, 8), (5, 7), (3, 1)])
def test_table_follows_the_formula_entry_by_entry(max_len, d_model):
    table = sinusoidal_positional_encoding(max_len, d_model)
    assert table.shape == (max_len, d_model) and table.dtype == torch.float32
    for pos in range(max_len):
        for column in range(d_model):
            two_i = column - column % 2
            angle = pos / 10000 ** (two_i / d_model)
            expected = math.sin(angle) if column % 2 == 0 else math.cos(angle)
            assert table[pos, column].item() == pytest.approx(expected, abs=1e-6)


def test_table_rows_have_constant_norm_and_distance_only_dot_products():
    table = sinusoidal_positional_encoding(64, 32).double()
    torch.testing.assert_close(table.norm(dim=1) ** 2, torch.full((64,), 16.0, dtype=torch.float64))
    # sin a sin b + cos a cos b = cos(a - b): PE[p] · PE[p + k] depends on k alone.
    for k in (1, 5, 20):
        dots = (table[:-k] * table[k:]).sum(dim=1)
        torch.testing.assert_close(dots, dots[:1].expand_as(dots), atol=1e-5, rtol=0)


def test_table_rejects_bad_sizes():
    with pytest.raises(ValueError):
        sinusoidal_positional_encoding(0, 8)
    with pytest.raises(ValueError):
        sinusoidal_positional_encoding(8, 0)


def test_add_goes_along_the_sequence_axis():
    x = torch.zeros(3, 4, 6)
    table = torch.arange(10.0)[:, None].expand(10, 6)  # row t is all t
    out = add_positional_encoding(x, table)
    expected = torch.arange(4.0)[None, :, None].expand(3, 4, 6)
    torch.testing.assert_close(out, expected)
    assert bool((x == 0).all())  # the input is left alone


def test_add_rejects_short_or_mismatched_tables():
    with pytest.raises(ValueError, match="positions"):
        add_positional_encoding(torch.zeros(2, 9, 4), torch.zeros(8, 4))
    with pytest.raises(ValueError, match="d_model=4"):
        add_positional_encoding(torch.zeros(2, 3, 4), torch.zeros(8, 6))
    with pytest.raises(ValueError, match="batch, seq, d_model"):
        add_positional_encoding(torch.zeros(3, 4), torch.zeros(8, 4))


def test_positions_break_permutation_equivariance():
    generator = torch.Generator().manual_seed(0)
    with torch.random.fork_rng(devices=[]):
        attention = MultiHeadAttention(16, 4).eval()
    x = torch.randn(1, 6, 16, generator=generator)
    order = torch.tensor([3, 0, 5, 1, 4, 2])
    out, _ = attention(x)
    out_permuted, _ = attention(x[:, order])
    torch.testing.assert_close(out_permuted, out[:, order], atol=1e-5, rtol=0)
    table = sinusoidal_positional_encoding(6, 16)
    with_positions, _ = attention(add_positional_encoding(x, table))
    permuted_with_positions, _ = attention(add_positional_encoding(x[:, order], table))
    assert not torch.allclose(permuted_with_positions, with_positions[:, order], atol=1e-3)


def test_modules_add_their_encodings():
    x = torch.zeros(2, 5, 8)
    torch.testing.assert_close(
        SinusoidalPositionalEncoding(8, max_len=20)(x)[1],
        sinusoidal_positional_encoding(5, 8),
    )
    learned = LearnedPositionalEmbedding(10, 8)
    torch.testing.assert_close(learned(x)[0], learned.embedding.weight[:5])
    learned(x).sum().backward()
    assert learned.embedding.weight.grad[:5].abs().sum() > 0
    assert learned.embedding.weight.grad[5:].abs().sum() == 0
    with pytest.raises(ValueError, match="max_len=10"):
        learned(torch.zeros(1, 11, 8))
    assert "table" not in SinusoidalPositionalEncoding(8).state_dict()


def _table_with_a_loop(max_len, d_model):
    table = torch.zeros(max_len, d_model)
    for pos in range(max_len):
        for column in range(0, d_model, 2):
            angle = pos / 10000 ** (column / d_model)
            table[pos, column] = math.sin(angle)
            if column + 1 < d_model:
                table[pos, column + 1] = math.cos(angle)
    return table


def _table_with_pow(max_len, d_model):
    position = torch.arange(max_len).unsqueeze(1)
    divisor = torch.pow(10000, torch.arange(0, d_model, 2) / d_model)
    table = torch.zeros(max_len, d_model)
    table[:, 0::2] = torch.sin(position / divisor)
    table[:, 1::2] = torch.cos(position / divisor[: d_model // 2])
    return table


def _add_with_explicit_batch_axis(x, table):
    return torch.add(x, table[None, : x.shape[1], :])


def _add_in_place(x, table):
    x += table[: x.shape[1]].unsqueeze(0)
    return x


def test_checkers_accept_other_correct_code(capsys):
    check("5.1", _table_with_a_loop)
    check("5.1", _table_with_pow)
    check("5.2", _add_with_explicit_batch_axis)
    assert capsys.readouterr().out.count("✓") == 3


def test_adding_in_place_is_refused_since_it_changes_the_callers_tensor():
    from course_utils.checking import CheckFailed

    with pytest.raises(CheckFailed, match="in place"):
        check("5.2", _add_in_place)
