"""Checkers for lesson 05: the sinusoidal table, and adding it along the sequence axis."""

from __future__ import annotations

import functools

import torch

from course_utils import positional
from course_utils.checking import Case, Mistake, flawed_mistake, function_exercise

__all__ = ["EXERCISES"]


def _flawed_table(
    max_len,
    d_model,
    *,
    swap=False,
    exponent="2i",
    layout="interleaved",
    multiply=False,
    first_position=0,
    odd_fails=False,
):
    """The sinusoidal table with one classic mistake switched on (computed in float64)."""
    if odd_fails and d_model % 2:
        # the same error a learner gets from assigning every cosine to the odd columns
        torch.zeros(max_len, d_model)[:, 1::2] = torch.zeros(max_len, (d_model + 1) // 2)
    position = torch.arange(first_position, first_position + max_len, dtype=torch.float64)[:, None]
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64)
    sin_exponent = {
        "2i": two_i,
        "i": two_i / 2,
        "column": two_i,
        "floor": two_i // d_model,
        "doubled": 2 * two_i,
    }[exponent]
    cos_exponent = two_i + 1 if exponent == "column" else sin_exponent
    if multiply:  # angles up to 10^5: float32, as learners compute them, rounds them differently
        position, sin_exponent = position.float(), sin_exponent.float()
        sin_angle = cos_angle = position * 10000.0 ** (sin_exponent / d_model)
    else:
        sin_angle = position / 10000.0 ** (sin_exponent / d_model)
        cos_angle = position / 10000.0 ** (cos_exponent / d_model)
    first, second = (torch.cos, torch.sin) if swap else (torch.sin, torch.cos)
    even, odd = first(sin_angle), second(cos_angle)[:, : d_model // 2]
    if layout == "halves":
        return torch.cat([even, odd], dim=1).float()
    table = torch.zeros(max_len, d_model, dtype=torch.float64)
    table[:, 0::2], table[:, 1::2] = even, odd
    return table.float()


_table_mistake = functools.partial(flawed_mistake, flawed=_flawed_table)


TABLE_MISTAKES = (
    _table_mistake(
        "sine and cosine swapped",
        "sine and cosine are swapped: even columns (0, 2, 4, ...) hold the sines, odd "
        "columns the cosines, so row 0 reads 0, 1, 0, 1, ...",
        swap=True,
    ),
    _table_mistake(
        "exponent without the 2",
        "your frequencies use i / d_model where the formula has 2i / d_model: with the pair "
        "index i, the exponent is 2 * i / d_model (or the even column index itself / d_model).",
        exponent="i",
    ),
    _table_mistake(
        "2i doubled again",
        "your i already steps by 2 (0, 2, 4, ...: it is the even column's index, the 2i of "
        "the formula); don't double it again: the exponent is i / d_model for that i.",
        exponent="doubled",
    ),
    _table_mistake(
        "odd columns with their own exponent",
        "your cosine in column 2i + 1 uses the exponent (2i + 1) / d_model; each sine-cosine "
        "pair shares one frequency, 10000^(2i / d_model), taken from the even column.",
        exponent="column",
    ),
    _table_mistake(
        "sines and cosines in two halves",
        "you put all sines in the first half and all cosines in the second; this course "
        "interleaves them: sines in columns 0, 2, 4, ..., cosines in columns 1, 3, 5, ...",
        layout="halves",
    ),
    _table_mistake(
        "multiplied by the frequency's inverse",
        "you multiplied the position by 10000^(2i / d_model); divide by it, so the "
        "frequencies fall from 1 down to 1/10000 across the columns.",
        multiply=True,
    ),
    _table_mistake(
        "integer division in the exponent",
        "your exponent 2i // d_model is a floor division, which is 0 for every column; use "
        "true division, 2i / d_model, on float tensors.",
        exponent="floor",
    ),
    _table_mistake(
        "positions from 1",
        "your positions start at 1; the first token has position 0, so row 0 reads 0, 1, 0, 1, ...",
        first_position=1,
    ),
    _table_mistake(
        "odd d_model",
        "with an odd d_model there is one more sine column than cosine columns: fill the "
        "odd columns with torch.cos(angle[:, : d_model // 2]).",
        odd_fails=True,
    ),
    Mistake(
        "transposed table",
        "your table is (d_model, max_len); return one row per position, (max_len, d_model).",
        lambda max_len, d_model: positional.sinusoidal_positional_encoding(max_len, d_model).T,
    ),
)


def _table_cases(gen: torch.Generator) -> list[Case]:
    return [
        Case((10, 16), label="max_len=10, d_model=16"),
        Case((7, 8), label="max_len=7, d_model=8"),
        Case((50, 32), label="max_len=50, d_model=32"),
        Case((6, 7), label="an odd d_model=7"),
    ]


def _added_along_batch(x, table):
    # Indexing axis 0 as if it were the sequence: the bug of a seq-first recipe on batch-first x.
    return x + table[: x.size(0)].unsqueeze(1)


ADD_MISTAKES = (
    Mistake(
        "added along the batch axis",
        "you added one position's encoding to every token of a whole sequence: x is "
        "batch-first, so positions run along axis 1; add table[:x.size(1)], which broadcasts "
        "over the batch.",
        _added_along_batch,
    ),
    Mistake(
        "sliced by the batch size",
        "you took table[:x.size(0)], as many rows as there are sequences; take one row per "
        "position, table[:x.size(1)].",
        lambda x, table: x + table[: x.size(0)],
    ),
    Mistake(
        "whole table added",
        "you added the whole table; x has only seq positions, so add its first seq rows, "
        "table[:x.size(1)].",
        lambda x, table: x + table,
    ),
    Mistake(
        "last rows of the table",
        "you took the last seq rows of the table; token t gets row t, so take the first "
        "ones, table[:x.size(1)].",
        lambda x, table: x + table[table.size(0) - x.size(1) :],
    ),
    Mistake(
        "shifted by one",
        "your rows are shifted by one: token 0 gets row 0, so take table[:x.size(1)], "
        "not table[1:x.size(1) + 1].",
        lambda x, table: x + table[1 : x.size(1) + 1],
    ),
    Mistake(
        "multiplied",
        "the encodings are added to the token vectors, not multiplied with them.",
        lambda x, table: x * table[: x.size(1)],
    ),
)


def _add_cases(gen: torch.Generator) -> list[Case]:
    randn = functools.partial(torch.randn, generator=gen)
    return [
        Case((randn(3, 5, 8), randn(10, 8)), label="x (3, 5, 8), table (10, 8)"),
        Case((randn(2, 7, 6), randn(7, 6)), label="x (2, 7, 6), table (7, 6)"),
        Case((randn(4, 2, 8), randn(6, 8)), label="x (4, 2, 8), more sequences than positions"),
        Case((randn(3, 3, 4), randn(9, 4)), label="x (3, 3, 4), as many sequences as positions"),
    ]


EXERCISES = (
    function_exercise(
        "5.1",
        positional.sinusoidal_positional_encoding,
        _table_cases,
        names=("table",),
        mistakes=TABLE_MISTAKES,
        atol=1e-4,  # float32 sines of angles up to 50 differ by a few 1e-6 between formulas
        exact_dtype=True,  # the exercise asks for float32
        success="sines in even columns, cosines in odd ones, one frequency per pair.",
    ),
    function_exercise(
        "5.2",
        positional.add_positional_encoding,
        _add_cases,
        names=("encoded",),
        mistakes=ADD_MISTAKES,
        success="row t of the table goes to token t of every sequence.",
    ),
)
