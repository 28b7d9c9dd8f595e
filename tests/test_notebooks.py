"""The generated notebooks: fresh, executed, and failing only where a learner has work to do."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import build_notebooks as build

LESSONS = build.all_lessons()
LESSON_IDS = [lesson.stem for lesson in LESSONS]


def test_every_lesson_is_generated_and_fresh():
    stale = build.stale_files(LESSONS)
    assert not stale, f"stale generated files {stale}: run `python tools/build_notebooks.py`"


@pytest.mark.parametrize("lesson", LESSONS, ids=LESSON_IDS)
def test_generation_is_byte_for_byte_reproducible(lesson):
    for learner in (True, False):
        assert build.dumps(build.build(lesson, learner)) == build.dumps(
            build.build(lesson, learner)
        )


@pytest.mark.parametrize("lesson", LESSONS, ids=LESSON_IDS)
def test_solution_notebook_is_executed_cleanly(lesson):
    notebook = nbformat.read(lesson.solution_path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        assert cell.execution_count is not None, f"{lesson.stem}: {cell.id} was never executed"
        for output in cell.outputs:
            assert output.output_type != "error", f"{lesson.stem}: {cell.id} raised {output.ename}"
            if output.output_type == "stream" and output.name == "stderr":
                assert "Warning" not in output.text, (
                    f"{lesson.stem}: {cell.id} warns: {output.text}"
                )


@pytest.mark.parametrize("lesson", LESSONS, ids=LESSON_IDS)
def test_learner_notebook_has_stubs_and_no_answers(lesson):
    learner = nbformat.read(lesson.learner_path, as_version=4)
    text = "\n".join(cell.source for cell in learner.cells)
    assert build.BEGIN not in text and build.END not in text
    exercises = [c for c in learner.cells if "exercise" in c.metadata.get("tags", [])]
    assert exercises, f"{lesson.stem} has no exercise"
    for cell in exercises:
        assert "raise NotImplementedError(" in cell.source
    assert all(not c.get("outputs") for c in learner.cells if c.cell_type == "code")
    solution = nbformat.read(lesson.solution_path, as_version=4)
    hidden = [c for c in solution.cells if "solution" in c.metadata.get("tags", [])]
    assert len(learner.cells) == len(solution.cells) - len(hidden)


def _questions(markdown: str) -> list[str]:
    """Every sentence of a markdown text that ends with a question mark."""
    return [q.strip() for q in re.findall(r"[^.!?]*\?(?=\s|\*\*|$)", markdown) if q.strip()]


@pytest.mark.parametrize("lesson", LESSONS, ids=LESSON_IDS)
def test_every_question_in_the_source_reaches_the_learner(lesson):
    source = jupytext.read(lesson.source)
    learner = nbformat.read(lesson.learner_path, as_version=4)
    learner_text = "\n".join(c.source for c in learner.cells if c.cell_type == "markdown")
    questions = [
        q for cell in source.cells if cell.cell_type == "markdown" for q in _questions(cell.source)
    ]
    missing = [q for q in questions if q not in learner_text]
    assert not missing, f"{lesson.stem}: questions hidden from learners: {missing}"


def test_question_finder_sees_questions_in_prose():
    text = "A fact. **Think: why add?** Because. Is $x$ large?\nNo."
    assert _questions(text) == ["**Think: why add?", "Is $x$ large?"]


@pytest.mark.slow
@pytest.mark.parametrize("lesson", LESSONS, ids=LESSON_IDS)
def test_learner_notebook_fails_only_at_checks_with_not_implemented(lesson, tmp_path):
    from nbclient import NotebookClient

    notebook = nbformat.read(lesson.learner_path, as_version=4)
    NotebookClient(
        notebook,
        timeout=1200,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()
    failures = {}
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                failures[cell.id] = output.ename
    checks = [c.id for c in notebook.cells if "check" in c.metadata.get("tags", [])]
    assert failures == dict.fromkeys(checks, "NotImplementedError")
