"""Catalogue of learner implementations for lesson 05 (exercises 5.1-5.2)."""

from __future__ import annotations

import math

import numpy as np
import torch
from catalogue import Catalogue, catalogue_tests

CATALOGUE = Catalogue()
valid, wrong = CATALOGUE.valid, CATALOGUE.wrong

# 5.1 the sinusoidal table ------------------------------------------------------------------


@valid("5.1")
def table_textbook(max_len, d_model):
    position = torch.arange(max_len, dtype=torch.float32)[:, None]
    two_i = torch.arange(0, d_model, 2, dtype=torch.float32)
    angle = position / 10000 ** (two_i / d_model)
    table = torch.zeros(max_len, d_model)
    table[:, 0::2] = torch.sin(angle)
    table[:, 1::2] = torch.cos(angle[:, : d_model // 2])
    return table


@valid("5.1")
def table_log_space(max_len, d_model):
    position = torch.arange(max_len).unsqueeze(1).float()
    div_term = torch.exp(torch.arange(0, d_model, 2).float() * (-math.log(10000.0) / d_model))
    pe = torch.zeros(max_len, d_model)
    pe[:, 0::2] = torch.sin(position * div_term)
    pe[:, 1::2] = torch.cos(position * div_term)[:, : d_model // 2]
    return pe


@valid("5.1")
def table_loops(max_len, d_model):
    pe = torch.zeros(max_len, d_model)
    for pos in range(max_len):
        for i in range(0, d_model, 2):
            pe[pos, i] = math.sin(pos / 10000 ** (i / d_model))
            if i + 1 < d_model:
                pe[pos, i + 1] = math.cos(pos / 10000 ** (i / d_model))
    return pe


@valid("5.1")
def table_numpy(max_len, d_model):
    pos = np.arange(max_len)[:, None]
    i = np.arange(d_model)[None, :]
    angle = pos / np.power(10000, (2 * (i // 2)) / d_model)
    table = np.where(i % 2 == 0, np.sin(angle), np.cos(angle))
    return torch.tensor(table, dtype=torch.float32)


def _table(max_len, d_model, exponent, *, swap=False, start=0):
    position = torch.arange(start, start + max_len, dtype=torch.float32)[:, None]
    table = torch.zeros(max_len, d_model)
    for column in range(d_model):
        angle = position[:, 0] / 10000 ** (exponent(column) / d_model)
        even = column % 2 == 0
        table[:, column] = torch.sin(angle) if even != swap else torch.cos(angle)
    return table


@wrong("5.1", "swapped")
def table_swapped(max_len, d_model):
    return _table(max_len, d_model, lambda c: c - c % 2, swap=True)


@wrong("5.1", "where the formula has 2i")
def table_i_not_2i(max_len, d_model):
    return _table(max_len, d_model, lambda c: c // 2)


@wrong("5.1", "shares one frequency")
def table_own_exponent(max_len, d_model):
    return _table(max_len, d_model, lambda c: c)


@wrong("5.1", "don't double it again")
def table_loop_doubled(max_len, d_model):
    # i is already the even column's index, 0, 2, 4, ...; 2 * i doubles it again
    pe = torch.zeros(max_len, d_model)
    for pos in range(max_len):
        for i in range(0, d_model, 2):
            pe[pos, i] = math.sin(pos / 10000 ** (2 * i / d_model))
            if i + 1 < d_model:
                pe[pos, i + 1] = math.cos(pos / 10000 ** (2 * i / d_model))
    return pe


@wrong("5.1", "interleaves them")
def table_halves(max_len, d_model):
    position = torch.arange(max_len, dtype=torch.float32)[:, None]
    two_i = torch.arange(0, d_model, 2, dtype=torch.float32)
    angle = position / 10000 ** (two_i / d_model)
    return torch.cat([torch.sin(angle), torch.cos(angle)[:, : d_model // 2]], dim=1)


@wrong("5.1", "divide by it")
def table_multiplied(max_len, d_model):
    position = torch.arange(max_len, dtype=torch.float32)[:, None]
    two_i = torch.arange(0, d_model, 2, dtype=torch.float32)
    angle = position * 10000 ** (two_i / d_model)
    table = torch.zeros(max_len, d_model)
    table[:, 0::2] = torch.sin(angle)
    table[:, 1::2] = torch.cos(angle[:, : d_model // 2])
    return table


@wrong("5.1", "floor division")
def table_floor_division(max_len, d_model):
    position = torch.arange(max_len)[:, None]
    two_i = torch.arange(0, d_model, 2)
    angle = position / 10000 ** (two_i // d_model)
    table = torch.zeros(max_len, d_model)
    table[:, 0::2] = torch.sin(angle)
    table[:, 1::2] = torch.cos(angle[:, : d_model // 2])
    return table


@wrong("5.1", "start at 1")
def table_from_one(max_len, d_model):
    return _table(max_len, d_model, lambda c: c - c % 2, start=1)


@wrong("5.1", "odd d_model")
def table_odd_fails(max_len, d_model):
    position = torch.arange(max_len, dtype=torch.float32)[:, None]
    two_i = torch.arange(0, d_model, 2, dtype=torch.float32)
    angle = position / 10000 ** (two_i / d_model)
    table = torch.zeros(max_len, d_model)
    table[:, 0::2] = torch.sin(angle)
    table[:, 1::2] = torch.cos(angle)
    return table


@wrong("5.1", "(max_len, d_model)")
def table_transposed(max_len, d_model):
    return table_textbook(max_len, d_model).T


@wrong("5.1", "should be float32")
def table_float64(max_len, d_model):
    position = torch.arange(max_len, dtype=torch.float64)[:, None]
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64)
    angle = position / 10000 ** (two_i / d_model)
    table = torch.zeros(max_len, d_model, dtype=torch.float64)
    table[:, 0::2] = torch.sin(angle)
    table[:, 1::2] = torch.cos(angle[:, : d_model // 2])
    return table


@wrong("5.1", "should be float32")
def table_numpy_float64(max_len, d_model):
    pos = np.arange(max_len)[:, None]
    i = np.arange(d_model)[None, :]
    angle = pos / np.power(10000, (2 * (i // 2)) / d_model)
    return torch.from_numpy(np.where(i % 2 == 0, np.sin(angle), np.cos(angle)))


@wrong("5.1", "")
def table_base_1000(max_len, d_model):
    position = torch.arange(max_len, dtype=torch.float32)[:, None]
    two_i = torch.arange(0, d_model, 2, dtype=torch.float32)
    angle = position / 1000 ** (two_i / d_model)
    table = torch.zeros(max_len, d_model)
    table[:, 0::2] = torch.sin(angle)
    table[:, 1::2] = torch.cos(angle[:, : d_model // 2])
    return table


# 5.2 adding along the sequence axis --------------------------------------------------------


@valid("5.2")
def add_slice(x, table):
    return x + table[: x.size(1)]


@valid("5.2")
def add_unsqueeze(x, table):
    seq = x.shape[1]
    return x + table[:seq, :].unsqueeze(0)


@valid("5.2")
def add_expand(x, table):
    return x + table[: x.size(1)].expand_as(x)


@valid("5.2")
def add_none_index(x, table):
    return x + table[None, : x.shape[1], :]


@wrong("5.2", "positions run along axis 1")
def add_along_batch(x, table):
    return x + table[: x.size(0)].unsqueeze(1)


@wrong("5.2", "as many rows as there are sequences")
def add_batch_rows(x, table):
    return x + table[: x.size(0)]


@wrong("5.2", "added the whole table")
def add_whole_table(x, table):
    return x + table


@wrong("5.2", "last seq rows")
def add_last_rows(x, table):
    return x + table[-x.size(1) :]


@wrong("5.2", "shifted by one")
def add_shifted(x, table):
    return x + table[1 : x.size(1) + 1]


@wrong("5.2", "not multiplied")
def add_multiplied(x, table):
    return x * table[: x.size(1)]


@wrong(
    "5.2",
    "in place with += (add_), which corrupts the caller's tensor; compute a new "
    "tensor instead (y = x + ..., not x += ...)",
)
def add_in_place(x, table):
    x += table[: x.size(1)]
    return x


@wrong("5.2", "(y = x + ..., not x += ...)")
def add_in_place_method(x, table):
    return x.add_(table[: x.size(1)])


@wrong("5.2", "positions run along axis 1")
def add_seq_first_loop(x, table):
    out = x.clone()
    for b in range(x.size(0)):
        out[b] = x[b] + table[b]
    return out


@wrong("5.2", "")
def add_table_to_first_token(x, table):
    out = x.clone()
    out[:, 0] = out[:, 0] + table[0]
    return out


@wrong("5.2", "should have shape")
def add_concatenated(x, table):
    return torch.cat([x, table[: x.size(1)].expand(x.size(0), -1, -1)], dim=-1)


MINIMUM = {"5.1": (10, 3), "5.2": (10, 3)}
(
    test_valid_is_accepted,
    test_wrong_is_rejected_with_its_mistake_named,
    test_catalogue_covers_each_exercise,
) = catalogue_tests(CATALOGUE, MINIMUM)
