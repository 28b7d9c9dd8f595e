"""The notebook build's handling of solution markers and lesson headers."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))

import build_notebooks as build


def test_solution_region_becomes_a_stub_at_the_markers_indent():
    code = "def f(x):\n    y = 1\n    ### BEGIN SOLUTION\n    return x + y\n    ### END SOLUTION\n"
    learner = build.strip_solution(code, "9.1", "test")
    assert learner == (
        'def f(x):\n    y = 1\n    raise NotImplementedError("Exercise 9.1: replace this line '
        'with your code.")\n'
    )
    assert build.drop_markers(code) == "def f(x):\n    y = 1\n    return x + y\n"


@pytest.mark.parametrize(
    ("code", "problem"),
    [
        ("### BEGIN SOLUTION\nx = 1\n", "never closed"),
        ("x = 1\n### END SOLUTION\n", "without a"),
        ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n", "inside another"),
        ("x = 1\n", "needs a"),
    ],
)
def test_malformed_markers_are_rejected(code, problem):
    with pytest.raises(build.SourceError, match=problem):
        build.strip_solution(code, "9.1", "lesson.py, cell 3")


def _lesson(tmp_path, body):
    source = tmp_path / "09_test.py"
    header = (
        "# %% [markdown]\n# # Lesson 09 · Test\n#\n# **Goal:** g.\n#\n# **Time:** 5 minutes.\n\n"
    )
    source.write_text(header + body, encoding="utf-8")
    return build.read_lesson(source)


def test_markers_outside_an_exercise_cell_are_rejected(tmp_path):
    lesson = _lesson(tmp_path, "# %%\nx = 1\n### BEGIN SOLUTION\n### END SOLUTION\n")
    with pytest.raises(build.SourceError, match="outside a cell tagged"):
        build.build(lesson, learner=True)


def test_exercise_without_a_check_cell_is_rejected(tmp_path):
    lesson = _lesson(
        tmp_path, '# %% tags=["exercise"]\n### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n'
    )
    with pytest.raises(build.SourceError, match="check cell"):
        build.build(lesson, learner=True)


def test_learner_drops_hidden_answers_and_solution_keeps_them(tmp_path):
    lesson = _lesson(
        tmp_path,
        '# %% tags=["exercise"]\ndef f():\n'
        "    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION\n\n"
        '# %% tags=["check"]\ncheck("9.1", f)\n\n'
        '# %% [markdown] tags=["solution"]\n# The answer.\n',
    )
    learner, solution = build.build(lesson, learner=True), build.build(lesson, learner=False)
    assert not any("The answer." in c.source for c in learner.cells)
    assert any("The answer." in c.source for c in solution.cells)
    assert (
        learner.cells[1].metadata["tags"] == ["colab-setup"]
        or "google.colab" in learner.cells[1].source
    )
    check_cell = next(c for c in solution.cells if "check" in c.metadata.get("tags", []))
    assert "nbval-check-output" in check_cell.metadata["tags"]
    assert "Open In Colab" in learner.cells[0].source


def test_lesson_header_must_state_goal_and_time(tmp_path):
    source = tmp_path / "09_test.py"
    source.write_text("# %% [markdown]\n# # Lesson 09 · Test\n", encoding="utf-8")
    with pytest.raises(build.SourceError, match="Goal"):
        build.read_lesson(source)
