"""The notebook build's handling of solution markers and lesson headers."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
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
        "# %% [markdown]\n# **Think: why?**\n\n"
        '# %% [markdown] tags=["solution"]\n# The answer.\n',
    )
    learner, solution = build.build(lesson, learner=True), build.build(lesson, learner=False)
    assert not any("The answer." in c.source for c in learner.cells)
    assert any("**Think: why?**" in c.source for c in learner.cells)
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


@pytest.mark.parametrize(
    "answer",
    [
        "**Think: why add?** Because.",
        "**Why `[None, :]`?** Broadcasting.",
        "  **Why** the sum works: ...",
        "What does the mask do? It blocks.",
        "Is $a?b$ `x.y` large? Yes.",
        "**Think: a word attends to A in head 0. What does\nthe head give it?** Less.",
    ],
)
def test_solution_cell_that_asks_a_question_is_rejected(tmp_path, answer):
    body = "".join(f"# {line}\n" for line in answer.split("\n"))
    lesson = _lesson(tmp_path, '# %% [markdown] tags=["solution"]\n' + body)
    with pytest.raises(build.SourceError, match=r"09_test.py, cell 2: .*starts with a question"):
        build.build(lesson, learner=True)


@pytest.mark.parametrize(
    "answer",
    [
        "**Answer.** The softmax runs per row. Does that help? Yes.",
        "**What to notice.** A key identical to the query often wins.",
        "The cost is $O(n^2)$. Why? Every pair.",
        "Thinking about it: `x?` is not a question.",
    ],
)
def test_solution_cell_with_an_answer_is_accepted(tmp_path, answer):
    lesson = _lesson(tmp_path, f'# %% [markdown] tags=["solution"]\n# {answer}\n')
    learner, solution = build.build(lesson, learner=True), build.build(lesson, learner=False)
    assert len(solution.cells) == len(learner.cells) + 1


def test_reuse_outputs_only_when_every_code_cell_is_unchanged(tmp_path):
    lesson = _lesson(tmp_path, "# %%\nx = 1\n\n# %% [markdown]\n# Text.\n\n# %%\nx\n")
    executed = build.build(lesson, learner=False)
    code = [c for c in executed.cells if c.cell_type == "code"]
    for count, cell in enumerate(code, start=1):
        cell.execution_count = count
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"out {count}\n")]
    committed = tmp_path / "committed.ipynb"
    committed.write_text(build.dumps(executed), encoding="utf-8")

    prose_edit = _lesson(tmp_path, "# %%\nx = 1\n\n# %% [markdown]\n# New text.\n\n# %%\nx\n")
    fresh = build.build(prose_edit, learner=False)
    assert build.reuse_outputs(fresh, committed)
    assert [c.get("outputs") for c in fresh.cells if c.cell_type == "code"] == [
        c.outputs for c in code
    ]
    assert any("New text." in c.source for c in fresh.cells)

    code_edit = _lesson(tmp_path, "# %%\nx = 2\n\n# %% [markdown]\n# Text.\n\n# %%\nx\n")
    fresh = build.build(code_edit, learner=False)
    assert not build.reuse_outputs(fresh, committed)
    assert all(not c.outputs for c in fresh.cells if c.cell_type == "code")
    assert not build.reuse_outputs(fresh, tmp_path / "missing.ipynb")
