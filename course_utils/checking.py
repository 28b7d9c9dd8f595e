"""The toolkit every exercise checker is built from.

A checker runs the learner's code on deterministic inputs and gives one verdict,
in this order: the type of what came back, its shape, the known mistakes (each
recomputed on the same inputs and matched, each with its own hint), then plain
"right shape, wrong values". Conventions:

* inputs come from a local ``torch.Generator``: the learner's global RNG is never reseeded;
* the learner's code gets clones, so it cannot change the checker's data;
* an untouched stub's ``NotImplementedError`` passes through unchanged;
* a crash inside learner code keeps the learner's traceback, with a note naming the
  call and the shapes it was given;
* a wrong answer raises :class:`CheckFailed` (an ``AssertionError``) with one sentence,
  so "Run All" stops and CI fails; a right answer prints one line.
"""

from __future__ import annotations

import inspect
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = [
    "Case",
    "CheckFailed",
    "Exercise",
    "Mistake",
    "Run",
    "call_learner",
    "describe_value",
    "function_exercise",
    "judge",
    "passed",
    "structure_verdict",
    "value_verdict",
]

DEFAULT_ATOL = 1e-5
DEFAULT_RTOL = 1e-4


class CheckFailed(AssertionError):
    """A learner's answer is wrong; the message is one sentence saying how."""

    def _render_traceback_(self) -> list[str]:
        # IPython calls this instead of printing a traceback through checker internals.
        return [f"\x1b[31m✗ {self}\x1b[0m"]


@dataclass(frozen=True)
class Mistake:
    """A classic wrong answer: a submission that makes it, and the hint it earns.

    ``fields`` names which returned values identify the mistake (``None``: all of
    them); returning the weights in place of the output, for example, is recognised
    from the first value alone.
    """

    name: str
    hint: str
    submission: Any
    fields: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Case:
    """One set of inputs to call a submission with, and a few words on what it tests."""

    args: tuple
    kwargs: dict = field(default_factory=dict)
    label: str = ""


@dataclass
class Exercise:
    """One exercise: its reference solution and its checker.

    ``reference`` is what a correct learner would write (a function or a class);
    ``check(submission)`` raises :class:`CheckFailed` or prints one line.
    ``stub`` and ``crash`` are submissions that tests use to show a stub passes
    through and a crash is annotated.
    """

    id: str
    name: str
    reference: Any
    check: Callable[[Any], None]
    mistakes: tuple[Mistake, ...] = ()
    stub: Any = None
    crash: Any = None

    def __call__(self, submission: Any) -> None:
        self.check(submission)


def passed(exercise_id: str, name: str, detail: str) -> None:
    """Print the one line a correct answer earns."""
    print(f"✓ {exercise_id} {name}: {detail}")


def describe_value(value: Any) -> str:
    """A short description of an argument: shape and dtype for tensors, repr otherwise."""
    if isinstance(value, torch.Tensor):
        dtype = str(value.dtype).removeprefix("torch.")
        return f"tensor of shape {tuple(value.shape)} ({dtype})"
    if (
        isinstance(value, (list, tuple))
        and value
        and all(isinstance(v, torch.Tensor) for v in value)
    ):
        return "(" + ", ".join(describe_value(v) for v in value) + ")"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _describe_call(name: str, signature_of: Any, args: tuple, kwargs: dict) -> str:
    try:
        bound = inspect.signature(signature_of).bind_partial(*args, **kwargs)
        parts = [f"{key}={describe_value(value)}" for key, value in bound.arguments.items()]
    except (TypeError, ValueError):
        parts = [describe_value(a) for a in args]
        parts += [f"{key}={describe_value(value)}" for key, value in kwargs.items()]
    return f"{name}({', '.join(parts)})"


def _clone(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, tuple):
        return tuple(_clone(v) for v in value)
    if isinstance(value, list):
        return [_clone(v) for v in value]
    if isinstance(value, dict):
        return {k: _clone(v) for k, v in value.items()}
    return value


def _add_note(error: BaseException, note: str) -> None:
    if hasattr(error, "add_note"):  # Python 3.11+
        error.add_note(note)
    else:  # Python 3.10: print the note where the learner will see it
        print(note, file=sys.stderr)


def call_learner(
    function: Callable,
    name: str,
    args: tuple = (),
    kwargs: dict | None = None,
    *,
    signature_of: Any = None,
) -> Any:
    """Call learner code on clones of the inputs.

    ``NotImplementedError`` (an untouched stub) passes through unchanged. Any other
    exception keeps its traceback and gains a note naming the call and its shapes.
    """
    kwargs = kwargs or {}
    try:
        return function(*_clone(args), **_clone(kwargs))
    except NotImplementedError:
        raise
    except Exception as error:
        call = _describe_call(name, signature_of or function, args, kwargs)
        _add_note(error, f"This error came from inside your code, when the checker called {call}.")
        raise


def _as_tuple(output: Any) -> tuple:
    return tuple(output) if isinstance(output, (tuple, list)) else (output,)


def _close(a: torch.Tensor, b: torch.Tensor, atol: float, rtol: float) -> bool:
    if a.shape != b.shape:
        return False
    if a.dtype == torch.bool or b.dtype == torch.bool:
        return a.dtype == b.dtype and bool(torch.equal(a, b))
    return bool(torch.allclose(a.double(), b.double(), atol=atol, rtol=rtol, equal_nan=True))


def _matches(actual: tuple, expected: tuple, fields: Sequence[int] | None, atol, rtol) -> bool:
    indices = range(len(expected)) if fields is None else fields
    return all(
        i < len(actual)
        and isinstance(actual[i], torch.Tensor)
        and _close(actual[i].detach().cpu(), expected[i].detach().cpu(), atol, rtol)
        for i in indices
    )


def _largest_gap(actual: torch.Tensor, expected: torch.Tensor) -> str:
    gap = (actual.double() - expected.double()).abs()
    gap = torch.where(torch.isnan(gap), torch.full_like(gap, math.inf), gap)
    flat = int(torch.argmax(gap))
    index = tuple(int(i) for i in torch.unravel_index(torch.tensor(flat), gap.shape))
    return (
        f"largest gap {gap.flatten()[flat].item():.3g} at index {index}: "
        f"yours {actual.flatten()[flat].item():.4g}, expected {expected.flatten()[flat].item():.4g}"
    )


def structure_verdict(actual: Any, expected: Any, names: Sequence[str]) -> str | None:
    """Say what is wrong with the type of ``actual`` (tuple length, tensor, dtype), or None."""
    if len(names) > 1 and not isinstance(actual, (tuple, list)):
        return (
            f"return a tuple ({', '.join(names)}); you returned a single {type(actual).__name__}."
        )
    actual_t, expected_t = _as_tuple(actual), _as_tuple(expected)
    if len(actual_t) != len(expected_t):
        return (
            f"return {len(expected_t)} values ({', '.join(names)}); you returned {len(actual_t)}."
        )
    for value, exp, name in zip(actual_t, expected_t, names, strict=True):
        if not isinstance(value, torch.Tensor):
            return f"{name} should be a torch.Tensor; you returned a {type(value).__name__}."
        if exp.dtype == torch.bool and value.dtype != torch.bool:
            return (
                f"{name} should be a bool tensor (True = may attend); yours has dtype "
                f"{value.dtype}."
            )
        if exp.dtype != torch.bool and value.dtype == torch.bool:
            return f"{name} should hold numbers ({exp.dtype}); yours is a bool tensor."
    return None


def value_verdict(actual: tuple, expected: tuple, names: Sequence[str], atol, rtol) -> str | None:
    """Say how well-typed ``actual`` differs from ``expected`` (shape, NaN, values), or None."""
    for value, exp, name in zip(actual, expected, names, strict=True):
        if value.shape != exp.shape:
            return (
                f"{name} should have shape {tuple(exp.shape)}; "
                f"yours has shape {tuple(value.shape)}."
            )
    for value, exp, name in zip(actual, expected, names, strict=True):
        if value.is_floating_point() and torch.isnan(value).any() and not torch.isnan(exp).any():
            return (
                f"{name} contains NaN where it should not: a softmax over a row of only -inf "
                "gives NaN, so check which entries your mask removes."
            )
    for value, exp, name in zip(actual, expected, names, strict=True):
        if not _close(value, exp, atol, rtol):
            if exp.dtype == torch.bool:
                wrong = int((value != exp).sum())
                return f"{name} has the right shape but {wrong} of {exp.numel()} entries are wrong."
            return f"{name} has the right shape but wrong values ({_largest_gap(value, exp)})."
    return None


@dataclass
class Run:
    """One call of a submission: what it returned, what the reference and each mistake return."""

    label: str
    actual: Any
    expected: Any
    mistake_outputs: Sequence[Any] = ()


def judge(
    runs: Sequence[Run],
    *,
    names: Sequence[str],
    mistakes: Sequence[Mistake] = (),
    atol: float = DEFAULT_ATOL,
    rtol: float = DEFAULT_RTOL,
) -> str | None:
    """Return the one-sentence verdict on a submission's runs, or None if it is right.

    Order: the type of each result; then a known mistake that explains every run;
    then, on the first wrong run, a mistake that explains it, its shape, NaN, values.
    """
    for run in runs:
        verdict = structure_verdict(run.actual, run.expected, names)
        if verdict is not None:
            return _with_label(verdict, run.label)
    prepared = [
        (
            run.label,
            tuple(v.detach().cpu() for v in _as_tuple(run.actual)),
            tuple(v.detach().cpu() for v in _as_tuple(run.expected)),
            [_as_tuple(out) for out in run.mistake_outputs],
        )
        for run in runs
    ]
    wrong = [p for p in prepared if not _matches(p[1], p[2], None, atol, rtol)]
    if not wrong:
        return None

    def explains(mistake_index: int, runs_to_explain) -> bool:
        mistake = mistakes[mistake_index]
        telling = [
            p
            for p in runs_to_explain
            if not _matches(p[3][mistake_index], p[2], mistake.fields, atol, rtol)
        ]
        return bool(telling) and all(
            _matches(p[1], p[3][mistake_index], mistake.fields, atol, rtol) for p in runs_to_explain
        )

    for i, mistake in enumerate(mistakes):
        if explains(i, prepared):
            return _with_label(mistake.hint, wrong[0][0])
    label, actual, expected, _ = wrong[0]
    for i, mistake in enumerate(mistakes):
        if explains(i, [wrong[0]]):
            return _with_label(mistake.hint, label)
    return _with_label(value_verdict(actual, expected, names, atol, rtol) or "wrong values.", label)


def _with_label(verdict: str, label: str) -> str:
    return f"{verdict} (test case: {label})" if label else verdict


def function_exercise(
    exercise_id: str,
    reference: Callable,
    cases: Callable[[torch.Generator], Sequence[Case]],
    *,
    names: Sequence[str],
    mistakes: Sequence[Mistake] = (),
    seed: int = 0,
    atol: float = DEFAULT_ATOL,
    rtol: float = DEFAULT_RTOL,
    success: str = "",
) -> Exercise:
    """Build an :class:`Exercise` for a function the learner writes.

    ``cases(generator)`` returns the inputs to try; the same cases are built afresh
    from ``seed`` for every check, so a learner's global RNG is never touched.
    """
    name = reference.__name__
    mistakes = tuple(mistakes)

    def check(submission: Callable) -> None:
        if not callable(submission):
            raise CheckFailed(
                f'{exercise_id} {name}: pass the function itself (e.g. check("{exercise_id}", '
                f"{name})); you passed a {type(submission).__name__}."
            )
        generator = torch.Generator().manual_seed(seed)
        runs = []
        for case in cases(generator):
            actual = call_learner(submission, name, case.args, case.kwargs, signature_of=reference)
            runs.append(
                Run(
                    case.label,
                    actual,
                    reference(*_clone(case.args), **_clone(case.kwargs)),
                    [m.submission(*_clone(case.args), **_clone(case.kwargs)) for m in mistakes],
                )
            )
        verdict = judge(runs, names=names, mistakes=mistakes, atol=atol, rtol=rtol)
        if verdict is not None:
            raise CheckFailed(f"{exercise_id} {name}: {verdict}")
        passed(exercise_id, name, success or f"correct on all {len(runs)} test cases.")

    def stub(*args, **kwargs):
        raise NotImplementedError("Exercise not done yet: replace this line with your code.")

    def crash(*args, **kwargs):
        return args[0][("not", "an", "index")]  # a typical learner slip: a bad index

    return Exercise(exercise_id, name, reference, check, mistakes, stub=stub, crash=crash)
