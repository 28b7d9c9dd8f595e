"""The generated notebooks: fresh, executed, and failing only where a learner has work to do."""

from __future__ import annotations

import os
import re
import subprocess
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


def test_another_process_elsewhere_builds_the_committed_bytes(tmp_path):
    """`--check` in a fresh interpreter with another hash seed, working directory, time zone
    and an ASCII locale finds every committed notebook fresh: the build is reproducible,
    not only repeatable within one process."""
    environment = {
        **os.environ,
        "PYTHONHASHSEED": "4321",  # set and dict orders differ from this process's
        "LC_ALL": "C",
        "PYTHONUTF8": "0",  # with the two below: files read without encoding="utf-8" fail
        "PYTHONCOERCECLOCALE": "0",
        "TZ": "Pacific/Kiritimati",
    }
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "build_notebooks.py"), "--check"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _edited(lesson: build.Lesson, folder: Path, edit: str) -> build.Lesson:
    """A copy of ``lesson``'s source in ``folder`` with one edit (its notebooks stay the same)."""
    text = lesson.source.read_text(encoding="utf-8")
    if edit == "prose":
        text += "\n# %% [markdown]\n# One more paragraph.\n"
    else:  # a line added inside the first solution region, at the marker's indent
        before, marker, after = text.partition(build.END)
        indent = before[before.rfind("\n") + 1 :]
        text = f"{before}pass  # edited\n{indent}{marker}{after}"
    copy = folder / lesson.source.name
    copy.write_text(text, encoding="utf-8")
    return build.read_lesson(copy)


@pytest.mark.parametrize(("edit", "stale"), [("prose", 2), ("solution", 1)])
def test_check_names_what_an_edited_source_leaves_stale(tmp_path, edit, stale):
    """An edit to prose leaves both notebooks stale; one inside a solution, the solution only."""
    lesson = LESSONS[0]
    expected = [lesson.learner_path, lesson.solution_path][-stale:]
    found = build.stale_files([_edited(lesson, tmp_path, edit)])
    found = [name for name in found if not name.startswith("README")]  # tested above
    assert found == [str(path.relative_to(ROOT)) for path in expected]


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


BARE_REPR = re.compile(
    r"^\s*(Text\(|<Axes|array\(\[<Axes|<matplotlib|\[<matplotlib\.|<Figure size|"
    r"\(<Figure|<mpl_toolkits)"
)
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def _bare_reprs(notebook: nbformat.NotebookNode) -> dict[str, str]:
    """Cells whose output is a matplotlib object's repr rather than a picture (cell id: text)."""
    found = {}
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if output.output_type in ("execute_result", "display_data") and "image/png" not in data:
                text = data.get("text/plain", "")
                if BARE_REPR.match(text):
                    found[cell.id] = text[:80]
    return found


@pytest.mark.parametrize("lesson", LESSONS, ids=LESSON_IDS)
def test_no_solution_output_is_a_bare_matplotlib_repr(lesson):
    bare = _bare_reprs(nbformat.read(lesson.solution_path, as_version=4))
    assert not bare, f"{lesson.stem}: end these cells with plt.show() or ';': {bare}"


def test_bare_repr_finder_spots_axes_and_text_but_not_figures():
    def output(text, image=False):
        data = {"text/plain": text, **({"image/png": "iVBOR"} if image else {})}
        return nbformat.v4.new_output("display_data", data=data)

    cells = [nbformat.v4.new_code_cell(id=f"c{i}") for i in range(4)]
    cells[0].outputs = [output("Text(0.5, 1.0, 'Title')")]
    cells[1].outputs = [output("array([<Axes: >, <Axes: >], dtype=object)")]
    cells[2].outputs = [output("<Figure size 640x480 with 1 Axes>", image=True)]
    cells[3].outputs = [output("tensor([1., 2.])")]
    assert set(_bare_reprs(nbformat.v4.new_notebook(cells=cells))) == {"c0", "c1"}


PROGRESS_BAR = re.compile(r"\|.*\| *\d+/\d+")  # tqdm's text: "name:  40%|####  | 8/20 [...]"


@pytest.mark.parametrize("lesson", LESSONS, ids=LESSON_IDS)
def test_every_widget_has_a_static_fallback_in_the_solution(lesson):
    """Demos carry an HTML table; progress bars have their final state saved with the notebook."""
    notebook = nbformat.read(lesson.solution_path, as_version=4)
    saved = notebook.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json")
    saved_ids = set(saved["state"]) if saved else set()
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if WIDGET_VIEW not in data:
                continue
            if PROGRESS_BAR.search(data.get("text/plain", "")):
                assert data[WIDGET_VIEW]["model_id"] in saved_ids, (
                    f"{lesson.stem}: the progress bar of {cell.id} has no saved widget state; "
                    "rebuild the notebook with tools/build_notebooks.py"
                )
            else:
                assert "<table" in data.get("text/html", ""), (
                    f"{lesson.stem}: the widget of {cell.id} has no static HTML table; "
                    "display it through course_utils.widgets.LiveView"
                )


def _errors_of_a_run(notebook: nbformat.NotebookNode, workdir: Path) -> dict[str, str]:
    """Run a notebook in a fresh kernel past any error; map each failing cell id to its error."""
    from nbclient import NotebookClient

    NotebookClient(
        notebook,
        timeout=1200,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(workdir)}},
    ).execute()
    return {
        cell.id: f"{output.ename}: {output.evalue}"
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if output.output_type == "error"
    }


def _without_brown(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """Offline, with no Brown corpus anywhere: not on NLTK_DATA, in the cache or at home."""
    empty = folder / "empty_nltk_data"
    empty.mkdir()
    monkeypatch.setenv("NLTK_DATA", str(empty))
    monkeypatch.setenv("COURSE_DATA_DIR", str(folder / "cache"))
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    monkeypatch.setenv("HOME", str(folder))  # no ~/nltk_data either


@pytest.mark.slow
@pytest.mark.parametrize("lesson", LESSONS, ids=LESSON_IDS)
def test_learner_notebook_fails_only_at_checks_with_not_implemented(lesson, tmp_path, monkeypatch):
    """Each learner notebook runs to its end, stopping only at its checks.

    Lesson 01 runs without the Brown corpus, so this also shows that it falls back to a small
    corpus and finishes (nbval runs the solution on the real corpus).
    """
    without_brown = lesson.number == "01"
    if without_brown:
        _without_brown(monkeypatch, tmp_path)
    notebook = nbformat.read(lesson.learner_path, as_version=4)
    errors = _errors_of_a_run(notebook, tmp_path)
    failures = {cell_id: error.split(":")[0] for cell_id, error in errors.items()}
    checks = [c.id for c in notebook.cells if "check" in c.metadata.get("tags", [])]
    assert failures == dict.fromkeys(checks, "NotImplementedError")
    if without_brown:
        printed = "".join(
            output.get("text", "") for cell in notebook.cells for output in cell.get("outputs", [])
        )
        assert "NOTICE: the Brown corpus is not available" in printed
