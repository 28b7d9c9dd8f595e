"""The registry of every exercise in the course, and the one-line ``check`` notebooks call.

``EXERCISES`` maps an id such as ``"2.1"`` to an :class:`~course_utils.checking.Exercise`
with ``.reference`` (the solution) and ``.check(submission)``. In a notebook::

    from course_utils.exercises import check
    check("2.1", scaled_dot_product_attention)
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Any

from course_utils import parts
from course_utils.checkers import (
    attention,
    classifier,
    embeddings,
    encoder,
    generation,
    multihead,
    positional,
    probing,
)
from course_utils.checking import CheckFailed, Exercise

__all__ = ["EXERCISES", "check"]

_PACKAGE = Path(__file__).resolve().parent

EXERCISES: dict[str, Exercise] = {
    exercise.id: exercise
    for module in (
        embeddings,
        attention,
        multihead,
        encoder,
        positional,
        classifier,
        probing,
        generation,
    )
    for exercise in module.EXERCISES
}


def check(exercise_id: str, submission: Any) -> None:
    """Check the learner's ``submission`` for exercise ``exercise_id``.

    Prints one line when it is right; raises :class:`CheckFailed` with one sentence
    when it is wrong. An untouched stub's ``NotImplementedError`` passes through.
    """
    __tracebackhide__ = True  # IPython and pytest leave this frame out of tracebacks
    try:
        exercise = EXERCISES[exercise_id]
    except KeyError:
        known = ", ".join(sorted(EXERCISES, key=lambda i: tuple(map(int, i.split(".")))))
        raise KeyError(f"no exercise {exercise_id!r}; the exercises are {known}") from None
    try:
        exercise.check(submission)
    except CheckFailed as failure:
        parts.record_check(exercise_id, submission, "failed")
        # Drop the checker's own frames: the learner needs the sentence, not our internals.
        raise failure.with_traceback(None) from None
    except Exception as error:
        stubbed = isinstance(error, NotImplementedError)
        parts.record_check(exercise_id, submission, "stub" if stubbed else "failed")
        # A stub or a crash in learner code: show the learner's frames, not the checker's.
        raise error.with_traceback(_learner_frames(error.__traceback__)) from None
    # A passed part is kept for later lessons (course_utils.parts); silent unless that fails.
    parts.record_check(exercise_id, submission, "passed")


def _learner_frames(traceback: TracebackType | None) -> TracebackType | None:
    """The traceback from the first frame outside this package on (all of it if none is)."""
    frame = traceback
    while frame is not None and Path(frame.tb_frame.f_code.co_filename).is_relative_to(_PACKAGE):
        frame = frame.tb_next
    return frame if frame is not None else traceback
