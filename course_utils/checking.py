"""The toolkit every exercise checker is built from.

A checker runs the learner's code on deterministic inputs and gives one verdict,
in this order: the type of what came back, its shape, the known mistakes (each
recomputed on the same inputs and matched, each with its own hint), then plain
"right shape, wrong values". Conventions:

* inputs come from a local ``torch.Generator``; the whole check runs inside
  :func:`isolated_state`, so the learner's global RNG, default dtype and grad mode are
  exactly as they were afterwards, whatever the learner's code did;
* the learner's code gets its own copies (modules too, deep-copied), never the objects
  the reference runs on, and the copies are compared afterwards: an input changed in
  place is a mistake of its own, named with the operation that changed it;
* an untouched stub's ``NotImplementedError`` passes through unchanged;
* a crash inside learner code keeps the learner's traceback, with a note naming the
  call and the type or shape of each argument;
* a wrong answer raises :class:`CheckFailed` (an ``AssertionError``) with one sentence,
  so "Run All" stops and CI fails; a right answer prints one line.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import inspect
import math
import random
import sys
import types
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, cast

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

__all__ = [
    "Case",
    "CheckFailed",
    "Exercise",
    "Mistake",
    "Run",
    "Verdict",
    "call_learner",
    "clone_inputs",
    "describe_value",
    "flawed_mistake",
    "function_exercise",
    "isolated_state",
    "judge",
    "kept_per_case",
    "learner_traceback",
    "mistake_output",
    "not_a_function",
    "passed",
    "structure_verdict",
    "value_verdict",
    "with_gradient_check",
]

DEFAULT_ATOL = 1e-5
DEFAULT_RTOL = 1e-4
DEFAULT_SUCCESS = "correct on every test case."


class CheckFailed(AssertionError):
    """A learner's answer is wrong; the message is one sentence saying how."""

    def _render_traceback_(self) -> list[str]:
        # IPython calls this instead of printing a traceback through checker internals.
        return [f"\x1b[31m✗ {self}\x1b[0m"]


class Verdict(Exception):
    """Raised inside a checker with the sentence a submission earns (no exercise prefix)."""


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


def flawed_mistake(
    name: str,
    hint: str,
    flawed: Callable[..., Any],
    *,
    fields: tuple[int, ...] | None = None,
    **switches: Any,
) -> Mistake:
    """The :class:`Mistake` ``name``: ``flawed`` with the keyword ``switches`` turned on.

    ``flawed`` is a function written with one keyword switch per classic mistake, called as
    ``flawed(*args, **kwargs, **switches)``, or a class whose class attributes are the
    switches, subclassed with them set (``_FlawedEncoderBlock`` gives classes named
    ``EncoderBlock``). Without switches a function is the mistake itself. Either way the
    submission is named after the mistake. A checker binds its flawed implementation once:
    ``_loss_mistake = functools.partial(flawed_mistake, flawed=_flawed_loss)``.
    """
    submission: Any
    if isinstance(flawed, type):
        class_name = flawed.__name__.removeprefix("_Flawed")
        submission = type(class_name, (flawed,), {"__qualname__": name, **switches})
    else:

        def switched_on(*args: Any, **kwargs: Any) -> Any:
            return flawed(*args, **kwargs, **switches)

        switched_on.__name__ = switched_on.__qualname__ = name
        submission = switched_on
    return Mistake(name, hint, submission, fields)


@dataclass(frozen=True)
class Case:
    """One set of inputs to call a submission with, and a few words on what it tests."""

    args: tuple
    kwargs: dict = field(default_factory=dict)
    label: str = ""


@dataclass
class Exercise:
    """One exercise: its reference solution and its checker.

    ``reference`` is what a correct learner would write (a function or a class).
    ``verdict(submission)`` returns the sentence a wrong submission earns (or raises
    :class:`Verdict` with it), or None when it is right; :meth:`check` wraps it.
    ``stub`` and ``crash`` are submissions that tests use to show a stub passes
    through and a crash is annotated.
    """

    id: str
    name: str
    reference: Any
    verdict: Callable[[Any], str | None]
    mistakes: tuple[Mistake, ...] = ()
    stub: Any = None
    crash: Any = None
    success: str = DEFAULT_SUCCESS

    def check(self, submission: Any) -> None:
        """Raise :class:`CheckFailed` with one sentence if ``submission`` is wrong, else print."""
        __tracebackhide__ = True  # IPython and pytest leave this frame out of tracebacks
        with isolated_state():
            try:
                verdict = self.verdict(submission)
            except Verdict as found:
                verdict = str(found)
            except Exception as error:
                # A stub or a crash in learner code: keep the learner's frames only.
                raise error.with_traceback(learner_traceback(error.__traceback__)) from None
        if verdict is not None:
            raise CheckFailed(f"{self.id} {self.name}: {verdict}") from None
        passed(self.id, self.name, self.success)


def passed(exercise_id: str, name: str, detail: str) -> None:
    """Print the one line a correct answer earns."""
    print(f"✓ {exercise_id} {name}: {detail}")


@contextlib.contextmanager
def isolated_state() -> Iterator[None]:
    """Run a check with PyTorch's defaults and leave the learner's global state as it was.

    Saves and restores the global random generators (torch, ``random``, NumPy), the
    default dtype and the grad mode; inside, the default dtype is float32 and grad is on,
    so a check never depends on what the learner (or an earlier check) set.
    """
    python_state = random.getstate()
    numpy_state = _numpy_random_state()
    dtype, grad = torch.get_default_dtype(), torch.is_grad_enabled()
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    try:
        with torch.random.fork_rng(devices=devices):
            torch.set_default_dtype(torch.float32)
            torch.set_grad_enabled(True)
            yield
    finally:
        torch.set_default_dtype(dtype)
        torch.set_grad_enabled(grad)
        random.setstate(python_state)
        if numpy_state is not None:
            import numpy

            # the learner's legacy global generator is exactly what must be restored
            numpy.random.set_state(numpy_state)  # noqa: NPY002


def _numpy_random_state() -> Any:
    numpy = sys.modules.get("numpy")
    return None if numpy is None else numpy.random.get_state()


def describe_value(value: Any) -> str:
    """A one-line description of an argument: shape and dtype for tensors, else a short repr.

    Objects whose repr spans several lines or is long (models, tokenizers) are named by
    their type alone.
    """
    if isinstance(value, torch.Tensor):
        dtype = str(value.dtype).removeprefix("torch.")
        return f"tensor of shape {tuple(value.shape)} ({dtype})"
    if (
        isinstance(value, (list, tuple))
        and value
        and all(isinstance(v, torch.Tensor) for v in value)
    ):
        return "(" + ", ".join(describe_value(v) for v in value) + ")"
    if isinstance(value, type):
        return value.__name__
    text = "" if isinstance(value, nn.Module) or callable(value) else repr(value)
    if not text or "\n" in text or len(text) > 60:
        return f"a {_public_name(type(value))}"
    return text


def _public_name(cls: type) -> str:
    """The name of the first class in ``cls``'s ancestry that is not private (``_Checked…``)."""
    return next((c.__name__ for c in cls.__mro__ if not c.__name__.startswith("_")), cls.__name__)


def _describe_call(name: str, signature_of: Any, args: tuple, kwargs: dict) -> str:
    try:
        bound = inspect.signature(signature_of).bind_partial(*args, **kwargs)
        parts = [f"{key}={describe_value(value)}" for key, value in bound.arguments.items()]
    except (TypeError, ValueError):
        parts = [describe_value(a) for a in args]
        parts += [f"{key}={describe_value(value)}" for key, value in kwargs.items()]
    return f"{name}({', '.join(parts)})"


def clone_inputs(value: Any) -> Any:
    """A copy of a call's inputs sharing no memory with them (tensors cloned, objects copied)."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, nn.Module):
        return copy.deepcopy(value)
    if isinstance(value, (tuple, list)):
        return type(value)(clone_inputs(v) for v in value)
    if isinstance(value, dict):
        return {k: clone_inputs(v) for k, v in value.items()}
    if hasattr(value, "__dict__") and not isinstance(
        value, (type, types.FunctionType, types.MethodType, types.ModuleType, functools.partial)
    ):  # a tokenizer, say: a learner's add_tokens() must not reach the next check
        try:
            return copy.deepcopy(value)
        except Exception:  # an object that cannot be copied is passed as it is
            return value
    return value


def _add_note(error: BaseException, note: str) -> None:
    if hasattr(error, "add_note"):  # Python 3.11+
        error.add_note(note)
    else:  # Python 3.10: print the note where the learner will see it
        print(note, file=sys.stderr)


# In-place changes ----------------------------------------------------------------------------

_OPERATORS = {
    "add_": "+=",
    "sub_": "-=",
    "mul_": "*=",
    "div_": "/=",
    "true_divide_": "/=",
    "floor_divide_": "//=",
    "pow_": "**=",
    "__setitem__": "item assignment [...] =",
}


def _is_in_place(name: str) -> bool:
    return (name.endswith("_") and not name.endswith("__")) or name == "__setitem__"


class _InPlaceLog(TorchFunctionMode):
    """Record the first in-place operation applied to each watched tensor's memory."""

    def __init__(self, watched: dict[int, str]):
        super().__init__()
        self.watched = watched  # storage address -> argument name
        self.first: dict[str, str] = {}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        __tracebackhide__ = True
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        targets = []
        if _is_in_place(name) and args and isinstance(args[0], torch.Tensor):
            targets.append(args[0])
        out = kwargs.get("out")
        if isinstance(out, torch.Tensor):
            targets.append(out)
            name = f"{name}(..., out=...)"
        for target in targets:
            argument = self.watched.get(_storage(target))
            if argument is not None:
                self.first.setdefault(argument, name)
        return func(*args, **kwargs)


def _storage(tensor: torch.Tensor) -> int:
    try:
        return tensor.untyped_storage().data_ptr()
    except (RuntimeError, NotImplementedError):
        return -1


def _instead(argument: str, operation: str | None) -> str:
    """The out-of-place form of ``operation`` on ``argument``, as an aside: ``(y = x + ...,
    not x += ...)``; empty when the operation is unknown."""
    if operation is None or not argument.isidentifier():
        return ""
    if operation == "__setitem__":
        return f" (y = {argument}.clone(), then change y)"
    operator = _OPERATORS.get(operation)
    if operator:
        return f" (y = {argument} {operator[:-1]} ..., not {argument} {operator} ...)"
    if operation.endswith("_") and operation[:-1].isidentifier():
        return f" (y = {argument}.{operation[:-1]}(...), not {argument}.{operation}(...))"
    return ""


def _describe_operation(name: str) -> str:
    operator = _OPERATORS.get(name)
    return f"{operator} ({name})" if operator else f".{name}"


@dataclass
class _Snapshot:
    """What each argument held before the learner's call, to compare with it afterwards."""

    tensors: dict[str, torch.Tensor]
    modules: dict[str, tuple[dict[str, torch.Tensor], dict[str, bool], dict[str, torch.device]]]

    @classmethod
    def of(cls, arguments: dict[str, Any]) -> _Snapshot:
        tensors, modules = {}, {}
        for name, value in _flatten(arguments):
            if isinstance(value, torch.Tensor):
                tensors[name] = value.detach().clone()
            elif isinstance(value, nn.Module):
                modules[name] = (
                    {k: v.detach().clone() for k, v in value.state_dict().items()},
                    {k: m.training for k, m in value.named_modules()},
                    {k: v.device for k, v in value.state_dict().items()},
                )
        return cls(tensors, modules)

    def changes(self, arguments: dict[str, Any], log: _InPlaceLog) -> str | None:
        """The sentence for the first argument the call changed, or None."""
        current = dict(_flatten(arguments))
        for name, before in self.tensors.items():
            after = current[name]
            if after.shape != before.shape or not torch.equal(
                torch.nan_to_num(after.detach(), nan=0.5), torch.nan_to_num(before, nan=0.5)
            ):
                operation = log.first.get(name)
                how = f" with {_describe_operation(operation)}" if operation else ""
                return (
                    f"your code changed its input {name} in place{how}, which corrupts the "
                    f"caller's tensor; compute a new tensor instead{_instead(name, operation)}."
                )
        for name, (state, modes, devices) in self.modules.items():
            module = current[name]
            new_modes = {k: m.training for k, m in module.named_modules()}
            if new_modes != modes:
                wanted = "training" if modes.get("", True) else "evaluation"
                return (
                    f"your code switched {name} out of {wanted} mode ({name}.train() or "
                    f"{name}.eval()); leave the mode the caller chose."
                )
            new_state = module.state_dict()
            if {k: v.device for k, v in new_state.items()} != devices:
                return f"your code moved {name} to another device; leave it where it is."
            for key, value in state.items():
                if key not in new_state or not torch.equal(new_state[key].detach(), value):
                    return (
                        f"your code changed {name}'s {key} in place; a forward pass must "
                        "leave the model's weights as they were."
                    )
        return None


def _flatten(arguments: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    for name, value in arguments.items():
        if isinstance(value, (tuple, list)):
            for i, item in enumerate(value):
                yield from _flatten({f"{name}[{i}]": item})
        else:
            yield name, value


def _bind(signature_of: Any, args: tuple, kwargs: dict) -> dict[str, Any]:
    try:
        return dict(inspect.signature(signature_of).bind_partial(*args, **kwargs).arguments)
    except (TypeError, ValueError):
        return {**{f"argument {i + 1}": a for i, a in enumerate(args)}, **kwargs}


def call_learner(
    function: Callable,
    name: str,
    args: tuple = (),
    kwargs: dict | None = None,
    *,
    signature_of: Any = None,
    inspect_call: Callable[[dict[str, Any]], str | None] | None = None,
    mistakes: Sequence[tuple[str, Callable[[], Any]]] = (),
) -> Any:
    """Call learner code on its own copies of the inputs, and check it left them unchanged.

    ``NotImplementedError`` (an untouched stub) passes through unchanged. Any other
    exception keeps its traceback and gains a note naming the call and its arguments,
    and the hint of the first of ``mistakes``, pairs ``(hint, run)``, whose ``run()``
    fails the same way. An input
    changed in place (a tensor's values, a module's weights, mode or device) raises
    :class:`Verdict` naming it; ``inspect_call(arguments)``, given the learner's copies
    after the call, may return a verdict of its own (e.g. "you called the model").
    """
    kwargs = kwargs or {}
    signature_of = signature_of or function
    given_args, given_kwargs = clone_inputs(args), clone_inputs(kwargs)
    arguments = _bind(signature_of, given_args, given_kwargs)
    snapshot = _Snapshot.of(arguments)
    watched = {
        _storage(value): argument
        for argument, value in _flatten(arguments)
        if isinstance(value, torch.Tensor)
    }
    log = _InPlaceLog(watched)
    try:
        # The learner's warnings are shown, never turned into errors by the caller's filters.
        with log, warnings.catch_warnings():
            cast(list, warnings.filters)[:] = [
                ("default", *rule[1:]) if rule[0] == "error" else rule for rule in warnings.filters
            ]
            warnings.filterwarnings("default", append=True)  # also refreshes the filter cache
            output = function(*given_args, **given_kwargs)
    except NotImplementedError:
        raise
    except Exception as error:
        call = _describe_call(name, signature_of, args, kwargs)
        note = f"This error came from inside your code, when the checker called {call}."
        hint = _same_failure(error, mistakes)
        _add_note(error, note + (f" Likely cause: {hint}" if hint else ""))
        raise
    verdict = snapshot.changes(arguments, log) or (inspect_call and inspect_call(arguments))
    if verdict:
        raise Verdict(verdict)
    return output


def _same_failure(
    error: Exception, mistakes: Sequence[tuple[str, Callable[[], Any]]]
) -> str | None:
    """The hint of the first known mistake that raises the same error on the same inputs."""
    for hint, run in mistakes:
        try:
            run()
        except Exception as other:
            if type(other) is type(error) and str(other) == str(error):
                return hint
    return None


def learner_traceback(traceback: TracebackType | None) -> TracebackType | None:
    """The traceback without the checker's own frames (all of it if nothing else is left).

    Frames of the checking machinery (this module, the registry, the checkers) are left
    out; frames of the learner's code, and of course code the learner called, stay.
    """
    frames = []
    while traceback is not None:
        if not _is_checker_file(traceback.tb_frame.f_code.co_filename):
            frames.append(traceback)
        traceback = traceback.tb_next
    if not frames:
        return None
    rebuilt = None
    for frame in reversed(frames):
        rebuilt = TracebackType(rebuilt, frame.tb_frame, frame.tb_lasti, frame.tb_lineno)
    return rebuilt


_PACKAGE = Path(__file__).resolve().parent


def _is_checker_file(filename: str) -> bool:
    path = Path(filename)
    return path in (_PACKAGE / "checking.py", _PACKAGE / "exercises.py") or (
        path.is_relative_to(_PACKAGE / "checkers")
    )


# Judging outputs -----------------------------------------------------------------------------


def _as_tuple(output: Any, count: int) -> tuple:
    if count > 1 and isinstance(output, (tuple, list)):
        return tuple(output)
    return (output,)


def _close(a: torch.Tensor, b: torch.Tensor, atol: float, rtol: float) -> bool:
    if a.shape != b.shape:
        return False
    if a.dtype == torch.bool or b.dtype == torch.bool:
        return a.dtype == b.dtype and bool(torch.equal(a, b))
    return bool(torch.allclose(a.double(), b.double(), atol=atol, rtol=rtol, equal_nan=True))


def _largest_gap(actual: torch.Tensor, expected: torch.Tensor) -> str:
    gap = (actual.double() - expected.double()).abs()
    gap = torch.where(torch.isnan(gap), torch.full_like(gap, math.inf), gap)
    flat = int(torch.argmax(gap))
    index = tuple(int(i) for i in torch.unravel_index(torch.tensor(flat), gap.shape))
    yours, wanted = actual.flatten()[flat].item(), expected.flatten()[flat].item()
    digits = 4  # more where 4 would print the two values alike (1.084 and 1.084)
    while digits < 10 and f"{yours:.{digits}g}" == f"{wanted:.{digits}g}":
        digits += 1
    return (
        f"largest gap {gap.flatten()[flat].item():.3g} at index {index}: "
        f"yours {yours:.{digits}g}, expected {wanted:.{digits}g}"
    )


def structure_verdict(
    actual: Any,
    expected: Any,
    names: Sequence[str],
    *,
    exact_dtype: bool = False,
    dtypes: bool = True,
) -> str | None:
    """Say what is wrong with the type of ``actual`` (tuple length, tensor, dtype), or None.

    ``dtypes=False`` leaves the dtypes out (only the container and tensor types).
    """
    count = len(names)
    if count > 1:
        if not isinstance(actual, (tuple, list)):
            return (
                f"return a tuple ({', '.join(names)}); you returned a single "
                f"{type(actual).__name__}."
            )
        if len(actual) != count:
            return f"return {count} values ({', '.join(names)}); you returned {len(actual)}."
    for value, exp, name in zip(
        _as_tuple(actual, count), _as_tuple(expected, count), names, strict=True
    ):
        if not isinstance(value, torch.Tensor):
            extra = (
                " (torch.stack turns a list of tensors into one tensor)"
                if isinstance(value, (list, tuple))
                else ""
            )
            return f"{name} should be a torch.Tensor; you returned a {type(value).__name__}{extra}."
        if not dtypes:
            continue
        if exp.dtype == torch.bool and value.dtype != torch.bool:
            return (
                f"{name} should be a bool tensor (True = may attend); yours has dtype "
                f"{str(value.dtype).removeprefix('torch.')}."
            )
        if exp.dtype != torch.bool and value.dtype == torch.bool:
            return f"{name} should hold numbers ({exp.dtype}); yours is a bool tensor."
        if exp.is_floating_point() and not value.is_floating_point():
            return (
                f"{name} should hold floating-point numbers; yours has dtype "
                f"{str(value.dtype).removeprefix('torch.')}."
            )
        if not exp.is_floating_point() and value.is_floating_point():
            return (
                f"{name} should hold integers ({str(exp.dtype).removeprefix('torch.')}); yours "
                f"has dtype {str(value.dtype).removeprefix('torch.')}."
            )
        if exact_dtype and value.dtype != exp.dtype:
            return (
                f"{name} should be {str(exp.dtype).removeprefix('torch.')}; yours is "
                f"{str(value.dtype).removeprefix('torch.')}."
            )
    return None


def value_verdict(
    actual: tuple, expected: tuple, names: Sequence[str], atol: float, rtol: float
) -> str | None:
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
                f"{name} contains NaN where the expected values have none "
                "(NaN comes from inf - inf, inf / inf or 0 / 0)."
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
    """One call of a submission: what it returned, what the reference and each mistake return.

    ``mistake_outputs`` may be a function that computes them: :func:`judge` calls it only
    when the submission is wrong, so a right answer never pays for running every mistake.
    """

    label: str
    actual: Any
    expected: Any
    mistake_outputs: Sequence[Any] | Callable[[], Sequence[Any]] = ()

    def outputs_of_mistakes(self) -> Sequence[Any]:
        found = self.mistake_outputs
        return found() if callable(found) else found


@dataclass
class _Outputs:
    """A run's values as tuples of CPU tensors, ready to compare."""

    label: str
    actual: tuple[torch.Tensor, ...]
    expected: tuple[torch.Tensor, ...]
    by_mistake: list[tuple]


def judge(
    runs: Sequence[Run],
    *,
    names: Sequence[str],
    mistakes: Sequence[Mistake] = (),
    atol: float = DEFAULT_ATOL,
    rtol: float = DEFAULT_RTOL,
    exact_dtype: bool = False,
) -> str | None:
    """Return the one-sentence verdict on a submission's runs, or None if it is right.

    Order: the type of each result; then a known mistake that explains every run;
    then, on the first wrong run, a mistake that explains it, its shape, NaN, values.
    """
    count = len(names)
    for run in runs:
        verdict = structure_verdict(run.actual, run.expected, names, dtypes=False)
        if verdict is not None:
            return _with_label(verdict, run.label)

    def as_cpu(output: Any) -> tuple:
        return tuple(
            v.detach().cpu() if isinstance(v, torch.Tensor) else v for v in _as_tuple(output, count)
        )

    outputs = [_Outputs(run.label, as_cpu(run.actual), as_cpu(run.expected), []) for run in runs]

    def same(a: tuple, b: tuple, fields: Sequence[int] | None) -> bool:
        indices = range(count) if fields is None else fields
        return all(
            i < len(a)
            and isinstance(a[i], torch.Tensor)
            and isinstance(b[i], torch.Tensor)
            and _close(a[i], b[i], atol, rtol)
            for i in indices
        )

    wrong = [out for out in outputs if not same(out.actual, out.expected, None)]
    if not wrong:
        if exact_dtype:
            for run in runs:
                verdict = structure_verdict(run.actual, run.expected, names, exact_dtype=True)
                if verdict is not None:
                    return _with_label(verdict, run.label)
        return None
    for run, out in zip(runs, outputs, strict=True):
        out.by_mistake = [as_cpu(found) for found in run.outputs_of_mistakes()]

    def explains(index: int, group: list[_Outputs]) -> bool:
        """The mistake reproduces the submission on every run of ``group``, and differs
        from the reference on at least one of them."""
        fields = mistakes[index].fields
        telling = [o for o in group if not same(o.by_mistake[index], o.expected, fields)]
        return bool(telling) and all(same(o.actual, o.by_mistake[index], fields) for o in group)

    for index, mistake in enumerate(mistakes):
        if explains(index, outputs):
            return _with_label(mistake.hint, wrong[0].label)
    for run in runs:
        verdict = structure_verdict(run.actual, run.expected, names, exact_dtype=exact_dtype)
        if verdict is not None:
            return _with_label(verdict, run.label)
    first = wrong[0]
    for index, mistake in enumerate(mistakes):
        if explains(index, [first]):
            return _with_label(mistake.hint, first.label)
    verdict = value_verdict(first.actual, first.expected, names, atol, rtol)
    return _with_label(verdict or "wrong values.", first.label)


def _with_label(verdict: str, label: str) -> str:
    return f"{verdict} (test case: {label})" if label else verdict


def mistake_output(submission: Callable, args: tuple, kwargs: dict) -> Any:
    """What a known mistake returns on these inputs (their copies), or None where it fails."""
    try:
        return submission(*clone_inputs(args), **clone_inputs(kwargs))
    except Exception:  # the mistake does not apply to these inputs (shapes that do not fit)
        return None


def kept_per_case(compute: Callable[..., list[Any]]) -> Callable[..., list[Any]]:
    """``compute`` for the known mistakes, run once per case index and then kept.

    A check rebuilds its cases from the same seed every time, so what the mistakes return
    on case ``index`` never changes: ``kept(index, *args)`` calls ``compute(*args)`` the
    first time that index is asked for (when an answer is first wrong), never again.
    """
    kept: dict[int, list[Any]] = {}

    def on_case(index: int, *args: Any) -> list[Any]:
        if index not in kept:
            kept[index] = compute(*args)
        return kept[index]

    return on_case


def stub(*args: Any, **kwargs: Any) -> Any:
    """An untouched exercise cell: it raises ``NotImplementedError``."""
    raise NotImplementedError("Exercise not done yet: replace this line with your code.")


def index_crash(*args: Any, **kwargs: Any) -> Any:
    """A submission that crashes inside learner code, as a typical slip does: a bad index."""
    return args[0][("not", "an", "index")]


def not_a_function(submission: Any, exercise_id: str, name: str) -> str | None:
    """The verdict when ``submission`` is not a function (a value, a class, a module), else None."""
    if callable(submission) and not isinstance(submission, (type, nn.Module)):
        return None
    given = (
        f"the class {submission.__name__}"
        if isinstance(submission, type)
        else f"a {type(submission).__name__}"
    )
    return f'pass the function itself (e.g. check("{exercise_id}", {name})); you passed {given}.'


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
    exact_dtype: bool = False,
    inspect_call: Callable[[dict[str, Any]], str | None] | None = None,
    crash: Callable = index_crash,
    success: str = DEFAULT_SUCCESS,
) -> Exercise:
    """Build an :class:`Exercise` for a function the learner writes.

    ``cases(generator)`` returns the inputs to try; the same cases are built afresh
    from ``seed`` for every check, so a learner's global RNG is never touched. The
    reference and each mistake run on their own copies of the inputs too.
    ``exact_dtype`` makes a float64 answer wrong where float32 is asked for.
    """
    name = reference.__name__
    mistakes = tuple(mistakes)
    mistakes_on = kept_per_case(
        lambda case: [mistake_output(m.submission, case.args, case.kwargs) for m in mistakes]
    )

    def verdict(submission: Callable) -> str | None:
        wrong_kind = not_a_function(submission, exercise_id, name)
        if wrong_kind:
            return wrong_kind
        generator = torch.Generator().manual_seed(seed)
        runs = []
        for index, case in enumerate(cases(generator)):
            actual = call_learner(
                submission,
                name,
                case.args,
                case.kwargs,
                signature_of=reference,
                inspect_call=inspect_call,
                mistakes=[
                    (m.hint, functools.partial(m.submission, *case.args, **case.kwargs))
                    for m in mistakes
                ],
            )
            expected = reference(*clone_inputs(case.args), **clone_inputs(case.kwargs))
            outputs = functools.partial(mistakes_on, index, case)
            runs.append(Run(case.label, actual, expected, outputs))
        return judge(
            runs, names=names, mistakes=mistakes, atol=atol, rtol=rtol, exact_dtype=exact_dtype
        )

    return Exercise(exercise_id, name, reference, verdict, mistakes, stub, crash, success)


def with_gradient_check(
    exercise: Exercise,
    make_args: Callable[[], tuple],
    wrt: dict[int, str],
    *,
    hint: str,
    label: str,
    values: str,
    advice: str,
    output: Callable[[Any], Any] = lambda result: result,
    check_output: Callable[[torch.Tensor], str | None] | None = None,
) -> Exercise:
    """``exercise``, whose check goes on, once the values pass, to the gradients.

    For a part that later lessons train through: on the positional arguments
    ``make_args()``, the gradients of ``(output(result) * upstream).sum()`` with respect to
    the arguments ``wrt`` (index -> name) must be the reference's. No gradient at all
    earns ``hint`` (a ``.detach()`` or ``torch.no_grad()``); another gradient names the
    argument, the largest gap and ``advice``. ``check_output(output)`` may judge the output
    first (say, its dtype). ``values`` names what was right; ``label`` the test case.
    """
    reference, name = exercise.reference, exercise.reference.__name__

    def through(function: Callable, upstream: torch.Tensor | None) -> Callable:
        def run(*call_args: Any) -> tuple[Any, tuple | None]:
            leaves = [a.requires_grad_() if i in wrt else a for i, a in enumerate(call_args)]
            # Grad on, whatever an earlier call (or this one, afterwards) switched off.
            with torch.enable_grad():
                result = output(function(*leaves))
            if not isinstance(result, torch.Tensor) or not result.requires_grad:
                return result, None
            with torch.enable_grad():  # again: the call may have switched it off
                loss = (result * (1.0 if upstream is None else upstream)).sum()
            return result, torch.autograd.grad(loss, [leaves[i] for i in wrt], allow_unused=True)

        return run

    def gradients(submission: Any) -> str | None:
        args = make_args()
        expected_output, _ = through(reference, None)(*clone_inputs(args))
        generator = torch.Generator().manual_seed(7)
        upstream = torch.randn(expected_output.shape, generator=generator)  # d loss / d out
        result, found = call_learner(
            through(submission, upstream), name, args, signature_of=reference
        )
        judged = check_output(result) if check_output and isinstance(result, torch.Tensor) else None
        if judged:
            return f"{judged} ({label})"
        if found is None or any(g is None for g in found):
            return f"{hint} ({label})"
        _, expected = through(reference, upstream)(*clone_inputs(args))
        for grad, wanted, argument in zip(found, expected or (), wrt.values(), strict=True):
            if not torch.allclose(grad, wanted, atol=DEFAULT_ATOL, rtol=DEFAULT_RTOL):
                gap = (grad - wanted).abs().max().item()
                return (
                    f"your {values} are right but the gradient reaching {argument} is not "
                    f"(largest gap {gap:.3g}); {advice} ({label})"
                )
        return None

    def verdict(submission: Any) -> str | None:
        return exercise.verdict(submission) or gradients(submission)

    return dataclasses.replace(exercise, verdict=verdict)
