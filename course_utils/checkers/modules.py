"""Checking exercises where the learner writes an ``nn.Module`` class.

The checker builds the learner's class and the reference with the same arguments, copies
the reference's (randomised) weights into the learner's module by parameter name, runs
both on the same inputs and judges the outputs as :func:`~course_utils.checking.judge`
does. Known mistakes are wrong classes with the same parameter names, run the same way.
Construction happens inside ``torch.random.fork_rng``, so the learner's global RNG is
left exactly as it was.

A case runs in evaluation mode, or in training mode (``ModuleCase.train``), where every
``nn.Dropout`` is replaced by a :class:`SeededDropout`. The mask of the n-th dropout
called in a forward pass depends only on n and the input's shape, whatever the module is
called: in a correct module the order of the dropouts is fixed by what each one reads (in
an encoder block: attention weights, attention output, feed-forward hidden layer,
feed-forward output), so the learner's ``self.drop`` and the reference's ``self.dropout``
drop the same entries, and so does one ``nn.Dropout`` used for both sublayers. The
learner's own ``p`` is kept, so a hard-coded rate shows.
"""

from __future__ import annotations

import functools
import inspect
import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from course_utils.checking import (
    DEFAULT_ATOL,
    DEFAULT_RTOL,
    DEFAULT_SUCCESS,
    Exercise,
    Mistake,
    Run,
    Verdict,
    call_learner,
    clone_inputs,
    judge,
    kept_per_case,
    mistake_output,
)

__all__ = [
    "CallOrder",
    "ModuleCase",
    "SeededDropout",
    "build_quietly",
    "module_exercise",
    "not_a_module_class",
    "randomise_parameters",
    "seed_dropouts",
]


@dataclass(frozen=True)
class ModuleCase:
    """How to build the module (``init_args``, ``init_kwargs``), one call of it, and its mode."""

    init_args: tuple
    args: tuple
    kwargs: dict = field(default_factory=dict)
    label: str = ""
    init_kwargs: dict = field(default_factory=dict)
    train: bool = False


class CallOrder:
    """Counts the masks the dropouts of one module have drawn since its forward pass began."""

    def __init__(self) -> None:
        self.count = 0

    def reset(self, *_: Any) -> None:
        """Start counting again (a forward pre-hook: called with the module and its inputs)."""
        self.count = 0

    def next(self) -> int:
        """The number of masks drawn before this one."""
        self.count += 1
        return self.count - 1


class SeededDropout(nn.Dropout):
    """Dropout whose mask depends only on ``seed`` and the input's shape: repeatable in checks.

    With an ``order`` shared by a module's dropouts, the mask depends on ``seed`` plus the
    number of masks drawn before it in the same forward pass instead, so it no longer
    matters which dropout module draws it. It never draws from the global random generator,
    so the learner's module and the reference drop exactly the same entries, and the
    learner's RNG is left untouched.
    """

    def __init__(self, p: float, seed: int, order: CallOrder | None = None):
        super().__init__(p)
        self.seed = seed
        self.order = order

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Zero a seeded selection of entries and rescale the rest by 1 / (1 - p) in training."""
        if not self.training or self.p == 0:
            return x  # no mask drawn, so it takes no place in the order either
        seed = self.seed if self.order is None else self.seed + self.order.next()
        generator = torch.Generator().manual_seed(seed)
        keep = torch.rand(x.shape, generator=generator) >= self.p
        return x * keep.to(x.device) / (1 - self.p)


def build_quietly(cls: Callable, *args, **kwargs) -> Any:
    """Call ``cls(*args, **kwargs)`` without consuming the global RNG (weights are overwritten)."""
    with torch.random.fork_rng(devices=[]):
        return cls(*args, **kwargs)


def randomise_parameters(module: nn.Module, generator: torch.Generator) -> nn.Module:
    """Fill every parameter from ``generator``, so no mistake can hide behind a default init.

    Matrices get N(0, 1/fan_in); vectors named ``weight`` (norm scales) get 1 + N(0, 0.3²);
    other vectors (biases) N(0, 0.3²).
    """
    with torch.no_grad():
        for name, parameter in module.named_parameters():
            noise = torch.randn(parameter.shape, generator=generator)
            if parameter.dim() >= 2:
                parameter.copy_(noise / math.sqrt(parameter.shape[-1]))
            elif name.endswith("weight"):
                parameter.copy_(1.0 + 0.3 * noise)
            else:
                parameter.copy_(0.3 * noise)
    return module


def not_a_module_class(submission: Any, exercise_id: str, name: str) -> str | None:
    """The verdict when ``submission`` is not an ``nn.Module`` subclass, else None."""
    if isinstance(submission, type) and issubclass(submission, nn.Module):
        return None
    kind = "an instance of" if isinstance(submission, nn.Module) else "a value of type"
    return (
        "pass your class itself, a subclass of nn.Module "
        f'(check("{exercise_id}", {name})); you passed {kind} {type(submission).__name__}.'
    )


def _describe_init(name: str, case: ModuleCase) -> str:
    parts = [repr(a) for a in case.init_args] + [f"{k}={v!r}" for k, v in case.init_kwargs.items()]
    return f"{name}({', '.join(parts)})"


_ORDER_SEED = zlib.crc32(b"dropout in call order")


def seed_dropouts(module: nn.Module, *, by_order: bool = False) -> nn.Module:
    """Replace each ``nn.Dropout`` by a :class:`SeededDropout`, keeping p.

    Each is seeded by its name, or with ``by_order`` by its place among the masks drawn in
    one call of ``module`` (a forward pre-hook on ``module`` restarts the count).
    """
    order = CallOrder() if by_order else None
    for name, child in list(module.named_modules()):
        if isinstance(child, nn.Dropout) and not isinstance(child, SeededDropout):
            parent, _, attr = name.rpartition(".")
            # by name, the same name gets the same mask in every module
            seed = _ORDER_SEED if by_order else zlib.crc32(name.encode())
            setattr(module.get_submodule(parent), attr, SeededDropout(child.p, seed, order))
    if order is not None:
        module.register_forward_pre_hook(order.reset)
    return module


def _load_reference_weights(learner: nn.Module, reference: nn.Module, layout: str) -> None:
    expected, got = reference.state_dict(), learner.state_dict()
    missing = [k for k in expected if k not in got]
    unexpected = [k for k in got if k not in expected]
    if missing or unexpected:
        problems = []
        if missing:
            problems.append(f"it has no {', '.join(missing)}")
        if unexpected:
            problems.append(f"it has {', '.join(unexpected)}, which the reference has not")
        raise Verdict(
            "the checker copies the reference weights into your module by name, but "
            f"{' and '.join(problems)}; {layout}"
        )
    for key, value in expected.items():
        if got[key].shape != value.shape:
            raise Verdict(
                f"{key} should have shape {tuple(value.shape)}; yours has "
                f"{tuple(got[key].shape)}; {layout}"
            )
    learner.load_state_dict(expected)


def _prepare(module: nn.Module, weights: nn.Module, case: ModuleCase, layout: str) -> nn.Module:
    """``module`` with ``weights``' values, seeded dropout, in the case's mode."""
    _load_reference_weights(module, weights, layout)
    return seed_dropouts(module, by_order=True).train(case.train)


def _signature_verdict(
    submission: type, reference: type, case: ModuleCase, hints: dict[str, str]
) -> str | None:
    """The hint when the learner's class cannot be built with the case's arguments, else None.

    ``hints`` gives the sentence for a missing keyword argument; otherwise the sentence
    names the argument and the reference's signature.
    """
    try:
        signature = inspect.signature(submission)
        signature.bind(*case.init_args, **case.init_kwargs)
    except TypeError:
        pass
    except ValueError:  # no signature to read: let the call itself say what is wrong
        return None
    else:
        return None
    parameters = signature.parameters
    open_ended = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
    missing = [k for k in case.init_kwargs if k not in parameters and not open_ended]
    if missing and missing[0] in hints:
        return hints[missing[0]]
    wanted = ", ".join(["self", *_positional(reference)])
    what = f"takes no {missing[0]} argument" if missing else "takes other arguments"
    return f"your __init__ {what}: write __init__({wanted}), as the exercise asks."


def _positional(cls: type) -> list[str]:
    """``cls``'s arguments that can be given by position, as ``name`` or ``name=default``."""
    return [
        p.name if p.default is p.empty else f"{p.name}={p.default!r}"
        for p in inspect.signature(cls).parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]


def _dropout_rate_verdict(module: nn.Module, case: ModuleCase) -> str | None:
    wanted = case.init_kwargs.get("dropout", 0.0)
    for name, child in module.named_modules():
        if isinstance(child, nn.Dropout) and child.p != wanted:
            return (
                f"your {name} drops with p={child.p}, but the module was built with "
                f"dropout={wanted}: pass the dropout argument on instead of a fixed rate."
            )
    return None


def _mode_verdict(module: nn.Module, case: ModuleCase, before: dict) -> str | None:
    after = {k: v.detach().clone() for k, v in module.state_dict().items()}
    if any(m.training != case.train for m in module.modules()):
        wanted = "training" if case.train else "evaluation"
        return (
            f"your forward switched the module out of {wanted} mode (.train() or .eval() "
            "inside forward); leave the mode the caller chose."
        )
    if any(not torch.equal(after[k], v) for k, v in before.items()):
        return "your forward changed the module's weights; a forward pass must leave them alone."
    return None


_RANDOM_HINT = {
    True: "in training mode your module drops different entries on every call: use "
    "nn.Dropout modules (the ones the checker can see, e.g. self.dropout1), not F.dropout "
    "or torch.rand.",
    False: "your module is random in evaluation mode: use nn.Dropout modules, which switch "
    "off after .eval(), not F.dropout(..., training=True) or torch.rand.",
}


def _random_verdict(module: nn.Module, case: ModuleCase, output: Any) -> str | None:
    """The hint when calling ``module`` again on the same inputs gives another output."""
    again = module(*clone_inputs(case.args), **clone_inputs(case.kwargs))
    for first, second in zip(_as_tuple(output), _as_tuple(again), strict=False):
        if isinstance(first, torch.Tensor) and not (
            isinstance(second, torch.Tensor)
            and first.shape == second.shape
            and torch.equal(torch.nan_to_num(first), torch.nan_to_num(second))
        ):
            return _RANDOM_HINT[case.train]
    return None


def _as_tuple(output: Any) -> tuple:
    return output if isinstance(output, tuple) else (output,)


def module_exercise(
    exercise_id: str,
    reference: type[nn.Module],
    cases: Callable[[torch.Generator], Sequence[ModuleCase]],
    *,
    layout: str,
    names: Sequence[str] = ("output",),
    mistakes: Sequence[Mistake] = (),
    after: Sequence[Callable[[type], str | None]] = (),
    argument_hints: dict[str, str] | None = None,
    stub: Any = None,
    crash: Any = None,
    seed: int = 0,
    atol: float = DEFAULT_ATOL,
    rtol: float = DEFAULT_RTOL,
    success: str = DEFAULT_SUCCESS,
) -> Exercise:
    """Build an :class:`~course_utils.checking.Exercise` for a module class the learner writes.

    ``layout`` is the sentence that tells which parameters the class must have; ``after``
    holds extra checks run once the values are right (each returns a verdict or None),
    e.g. that invalid arguments are rejected. Before the values, each case checks that
    the class accepts the case's arguments (``argument_hints``: the sentence for a missing
    keyword argument), that the module keeps the dropout rate it was built with, leaves
    its mode and weights as they were, and gives the same output when called twice.
    """
    name = reference.__name__
    mistakes = tuple(mistakes)

    def run(cls: type, case: ModuleCase, weights: nn.Module) -> Any:
        module = _prepare(
            build_quietly(cls, *case.init_args, **case.init_kwargs), weights, case, layout
        )
        return module(*clone_inputs(case.args), **clone_inputs(case.kwargs))

    @kept_per_case  # the cases and their weights come from ``seed``: the same every check
    @torch.no_grad()
    def mistake_runs(case: ModuleCase, weights: nn.Module) -> list[Any]:
        return [
            mistake_output(functools.partial(run, m.submission), (case, weights), {})
            for m in mistakes
        ]

    def verdict(submission: Any) -> str | None:
        not_a_class = not_a_module_class(submission, exercise_id, name)
        if not_a_class:
            return not_a_class
        generator = torch.Generator().manual_seed(seed)
        runs = []
        with torch.no_grad():
            for index, case in enumerate(cases(generator)):
                weights = randomise_parameters(
                    build_quietly(reference, *case.init_args, **case.init_kwargs), generator
                )
                found = _signature_verdict(submission, reference, case, argument_hints or {})
                if found:
                    return f"{found} (test case: {case.label})"
                learner = call_learner(
                    functools.partial(build_quietly, submission),
                    name,
                    case.init_args,
                    case.init_kwargs,
                    signature_of=reference,
                )
                found = _dropout_rate_verdict(learner, case)
                if found:
                    return f"{found} (test case: {case.label})"
                learner = _prepare(learner, weights, case, layout)
                before = {k: v.detach().clone() for k, v in learner.state_dict().items()}
                actual = call_learner(
                    learner,
                    _describe_init(name, case),
                    case.args,
                    case.kwargs,
                    signature_of=learner.forward,
                    mistakes=[
                        (m.hint, functools.partial(run, m.submission, case, weights))
                        for m in mistakes
                    ],
                )
                found = _mode_verdict(learner, case, before) or _random_verdict(
                    learner, case, actual
                )
                if found:
                    return f"{found} (test case: {case.label})"
                expected = run(reference, case, weights)
                outputs = functools.partial(mistake_runs, index, case, weights)  # run if wrong
                runs.append(Run(case.label, actual, expected, outputs))
        found = judge(runs, names=names, mistakes=mistakes, atol=atol, rtol=rtol)
        for extra in after:
            found = found or extra(submission)
        return found

    return Exercise(exercise_id, name, reference, verdict, mistakes, stub, crash, success)
