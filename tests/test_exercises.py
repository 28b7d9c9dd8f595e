"""Every registered exercise: the reference passes, every known mistake fails with its
own hint, an untouched stub passes through, and a crash keeps a note naming the call."""

from __future__ import annotations

import pytest

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


@pytest.mark.parametrize(("exercise", "mistake"), MISTAKES)
def test_each_mistake_gets_its_own_hint(exercise, mistake):
    with pytest.raises(CheckFailed) as failure:
        check(exercise.id, mistake.submission)
    message = str(failure.value)
    assert mistake.hint in message, f"{mistake.name!r} got another verdict: {message}"
    assert "\n" not in message


@pytest.mark.parametrize("exercise_id", EXERCISE_IDS)
def test_hints_are_distinct(exercise_id):
    hints = [m.hint for m in EXERCISES[exercise_id].mistakes]
    assert len(hints) == len(set(hints))


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
