"""Every registered exercise: the reference passes, every known mistake fails with its
own hint, an untouched stub passes through, a crash keeps a note naming the call, inputs
changed in place are caught, and no check changes the learner's global state."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from IPython.utils.capture import capture_output
from torch import nn

from course_utils.checking import CheckFailed
from course_utils.exercises import EXERCISES, check

EXERCISE_IDS = sorted(EXERCISES)
MISTAKES = [
    pytest.param(exercise, mistake, id=f"{exercise.id}-{mistake.name}")
    for exercise in EXERCISES.values()
    for mistake in exercise.mistakes
]


def test_registry_ids_are_lesson_dot_number():
    for exercise_id, exercise in EXERCISES.items():
        lesson, number = exercise_id.split(".")
        assert lesson.isdigit() and number.isdigit()
        assert exercise.id == exercise_id


@pytest.mark.parametrize("exercise_id", EXERCISE_IDS)
def test_reference_passes(exercise_id, capsys):
    check(exercise_id, EXERCISES[exercise_id].reference)
    out = capsys.readouterr().out
    assert out.startswith(f"✓ {exercise_id} ") and out.count("\n") == 1


def verdict_of(exercise_id, submission) -> str:
    """The sentence a wrong submission earns: the failure, or the note on its crash."""
    try:
        check(exercise_id, submission)
    except CheckFailed as failure:
        return str(failure)
    except NotImplementedError:
        raise
    except Exception as crash:  # a mistake that makes the code crash: the note names it
        return " ".join(getattr(crash, "__notes__", [])) or repr(crash)
    return "passed"


@pytest.mark.parametrize(("exercise", "mistake"), MISTAKES)
def test_each_mistake_gets_its_own_hint(exercise, mistake):
    message = verdict_of(exercise.id, mistake.submission)
    assert mistake.hint in message, f"{mistake.name!r} got another verdict: {message}"
    assert "\n" not in message


@pytest.mark.parametrize("exercise_id", EXERCISE_IDS)
def test_mistake_names_are_distinct(exercise_id):
    # Several forms of one mistake may share a hint; each form has its own name.
    names = [m.name for m in EXERCISES[exercise_id].mistakes]
    assert len(names) == len(set(names))


def global_state() -> tuple:
    return (
        torch.get_rng_state(),
        random.getstate(),
        np.random.get_state()[1].copy(),  # noqa: NPY002 (the learner's legacy global RNG)
        torch.get_default_dtype(),
        torch.is_grad_enabled(),
    )


def assert_same_state(before: tuple) -> None:
    after = global_state()
    assert torch.equal(before[0], after[0]), "the torch RNG changed"
    assert before[1] == after[1], "Python's random changed"
    assert np.array_equal(before[2], after[2]), "NumPy's RNG changed"
    assert before[3:] == after[3:], "the default dtype or the grad mode changed"


def state_changing(exercise):
    """The reference, rewritten to draw from every global RNG and to switch grad off.

    A function switches grad off after computing, so gradients still flow through its
    result (exercise 2.1 checks that they do).
    """
    reference = exercise.reference

    def meddle():
        torch.rand(3)
        random.random()
        np.random.rand()  # noqa: NPY002
        torch.set_grad_enabled(False)

    if isinstance(reference, type):

        class Meddling(reference):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                meddle()

        return Meddling

    def meddling(*args, **kwargs):
        result = reference(*args, **kwargs)
        meddle()
        return result

    return meddling


@pytest.mark.parametrize("exercise_id", EXERCISE_IDS)
def test_no_check_changes_global_state(exercise_id, capsys):
    exercise = EXERCISES[exercise_id]
    torch.manual_seed(1234)
    submissions = [exercise.reference, exercise.stub, exercise.crash, state_changing(exercise)]
    submissions += [m.submission for m in exercise.mistakes[:3]]
    for submission in submissions:
        before = global_state()
        try:
            check(exercise_id, submission)
        except Exception:  # verdicts, stubs and crashes alike must leave the state alone
            pass
        assert_same_state(before)
    # The meddling (but right) submission passed: a check runs in its own state.
    assert capsys.readouterr().out.count("✓") == 2


@pytest.mark.parametrize("exercise_id", EXERCISE_IDS)
def test_check_ignores_the_learners_default_dtype_and_grad_mode(exercise_id, capsys):
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        with torch.no_grad():
            check(exercise_id, EXERCISES[exercise_id].reference)
        assert torch.get_default_dtype() == torch.float64
    finally:
        torch.set_default_dtype(previous)
    assert capsys.readouterr().out.startswith(f"✓ {exercise_id}")


def in_place(exercise):
    """The reference, rewritten to change its first input in place after computing."""
    reference = exercise.reference
    if isinstance(reference, type):

        class Mutating(reference):
            def forward(self, query, *args, **kwargs):
                output = super().forward(query, *args, **kwargs)
                query.mul_(2)
                return output

        return Mutating

    def mutating(*args, **kwargs):
        output = reference(*args, **kwargs)
        for value in args:
            if isinstance(value, torch.Tensor):
                value.mul_(2)
                break
            if isinstance(value, nn.Module):
                with torch.no_grad():
                    next(value.parameters()).mul_(2)
                break
        return output

    return mutating


NO_INPUT_TO_CHANGE = {
    "2.2": "causal_mask takes only an int",
    "3.4": "loading weights into the layer is the exercise's job",
    "5.1": "the table's function takes only ints",
}


@pytest.mark.parametrize("exercise_id", [i for i in EXERCISE_IDS if i not in NO_INPUT_TO_CHANGE])
def test_inputs_changed_in_place_are_named(exercise_id):
    message = verdict_of(exercise_id, in_place(EXERCISES[exercise_id]))
    assert "in place" in message, message
    assert "\n" not in message


@pytest.mark.parametrize("exercise_id", EXERCISE_IDS)
def test_untouched_stub_passes_through(exercise_id):
    with pytest.raises(NotImplementedError):
        check(exercise_id, EXERCISES[exercise_id].stub)


@pytest.mark.parametrize("exercise_id", EXERCISE_IDS)
def test_crash_keeps_learner_error_with_a_note(exercise_id):
    exercise = EXERCISES[exercise_id]
    with pytest.raises(Exception) as crash:
        check(exercise_id, exercise.crash)
    assert not isinstance(crash.value, (CheckFailed, NotImplementedError))
    notes = getattr(crash.value, "__notes__", [])
    assert any("inside your code" in note and exercise.name in note for note in notes)


def test_failure_is_an_assertion_error_with_short_ipython_rendering():
    exercise = EXERCISES["2.1"]
    with pytest.raises(AssertionError) as failure:
        check("2.1", exercise.mistakes[0].submission)
    rendered = failure.value._render_traceback_()
    assert len(rendered) == 1 and exercise.mistakes[0].hint in rendered[0]
    frames = []
    tb = failure.value.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame.f_code.co_filename)
        tb = tb.tb_next
    # Only the learner's call and check() itself: none of the checker's internals.
    assert [f for f in frames if f != __file__] == [check.__code__.co_filename]


def test_unknown_exercise_names_the_known_ones():
    with pytest.raises(KeyError, match=r"2\.1"):
        check("9.9", print)


def test_passing_a_non_function_is_a_clear_failure():
    with pytest.raises(CheckFailed, match="pass the function itself"):
        check("2.1", 42)
    with pytest.raises(CheckFailed, match="you passed the class MultiHeadAttention"):
        check("2.1", EXERCISES["3.3"].reference)
    with pytest.raises(CheckFailed, match="you passed a MultiHeadAttention"):
        check("3.4", EXERCISES["3.3"].reference(8, 2))


def test_learner_crash_traceback_shows_learner_frames_not_the_checkers():
    def broken(query, key, value, mask=None):
        return query @ key  # shapes do not fit: (2, 4, 16) @ (2, 6, 16)

    with pytest.raises(RuntimeError) as crash:
        check("2.1", broken)
    frames = []
    tb = crash.value.__traceback__
    while tb is not None:
        frames.append((tb.tb_frame.f_code.co_filename, tb.tb_frame.f_code.co_name))
        tb = tb.tb_next
    assert not any(name.endswith("checking.py") for name, _ in frames)
    assert any(function == "broken" for _, function in frames)
    assert any("inside your code" in note for note in crash.value.__notes__)


def test_a_learners_train_and_to_in_one_check_leave_later_checks_alone(capsys):
    from course_utils.checkers.probing import probe_model

    reference = EXERCISES["7.1"].reference

    def switches_the_model(model, tokenizer, text, candidates):
        model.train().to("cpu")
        return reference(model, tokenizer, text, candidates)

    assert "out of evaluation mode" in verdict_of("7.1", switches_the_model)
    assert not probe_model()[1].training
    check("7.2", EXERCISES["7.2"].reference)
    assert capsys.readouterr().out.startswith("✓ 7.2")


def test_stub_and_crash_tracebacks_show_only_learner_frames():
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance(colors="nocolor")
    cells = {
        "stub": "def split_heads(x, num_heads):\n    raise NotImplementedError('stub')",
        "crash": "def split_heads(x, num_heads):\n    return x.view(3, 3, 3)",
    }
    for kind, definition in cells.items():
        with capture_output() as captured:
            shell.run_cell(
                f'from course_utils.exercises import check\n{definition}\ncheck("3.1", split_heads)'
            )
        text = captured.stdout + captured.stderr
        assert "split_heads" in text and ("NotImplementedError" in text) == (kind == "stub")
        assert "checking.py" not in text and "exercises.py" not in text, text


def test_a_single_list_is_not_called_several_values():
    message = verdict_of("1.1", lambda a, b: [float(x) for x in (a * b).sum(-1).reshape(-1)])
    assert "should be a torch.Tensor; you returned a list" in message


def test_crash_note_names_each_argument_by_type_on_one_line():
    def broken(model, input_ids):
        return model.head(input_ids)  # ids are (batch, seq) integers, not vectors

    with pytest.raises(RuntimeError) as crash:
        check("6.2", broken)
    (note,) = [n for n in crash.value.__notes__ if "inside your code" in n]
    assert "model=a TransformerClassifier" in note and "input_ids=tensor of shape" in note
    assert "\n" not in note


def test_a_small_gap_is_printed_with_the_digits_that_show_it():
    from course_utils.checking import _largest_gap

    message = _largest_gap(torch.tensor([2.0, 1.0843]), torch.tensor([2.0, 1.084]))
    assert "index (1,)" in message and "yours 1.0843, expected 1.084" in message
    assert "yours 1.5, expected 1" in _largest_gap(torch.tensor([1.5]), torch.tensor([1.0]))
