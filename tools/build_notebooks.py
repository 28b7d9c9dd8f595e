"""Generate the learner and solution notebooks from the lesson sources.

    python tools/build_notebooks.py              # every lesson: learner + executed solution
    python tools/build_notebooks.py 02 04        # only lessons 02 and 04
    python tools/build_notebooks.py --no-execute # write solutions without running them (drafting)
    python tools/build_notebooks.py --reuse-outputs 05  # code unchanged: keep the committed outputs
    python tools/build_notebooks.py --check      # exit 1, naming the files, if anything is stale

Each ``lessons/NN_slug.py`` (jupytext percent format) is the single source of truth:

* ``notebooks/NN_slug.ipynb`` is the learner notebook: code between ``### BEGIN SOLUTION`` and
  ``### END SOLUTION`` in cells tagged ``exercise`` becomes ``raise NotImplementedError(...)`` at
  the marker's indent, markdown cells tagged ``solution`` (answers) are dropped, and there are
  no outputs.
* ``notebooks/solutions/NN_slug.ipynb`` is complete and executed, outputs kept, so instructors
  can read it without running it. The state of its widgets (demos, progress bars) is saved in
  the notebook metadata, so viewers that restore widget state show them; the course's demos
  also carry a static HTML table (``course_utils.widgets.LiveView``) for viewers that do not.

Questions stay visible: a question for the learner goes in an ordinary markdown cell, and only
its answer goes in the next cell, tagged ``solution``. (A separate cell rather than a collapsed
``<details>`` block: plain markdown renders the same in Colab, JupyterLab, VS Code and GitHub,
math included, and the answer is not one click away from a learner who has not yet thought.)
The build rejects a ``solution`` cell that asks a question, i.e. one whose text starts with
``**Think`` or ``**Why``, or whose first sentence ends with ``?`` (inline code and ``$math$``
ignored; a sentence ends at ``.``, ``!`` or ``?`` followed by a space, a newline, ``**`` or the
end of the cell).

``--reuse-outputs`` skips the solution's execution when no code cell changed: if the committed
solution notebook has exactly the same sequence of code-cell sources, its outputs and execution
counts are copied over and only the markdown is regenerated (seconds instead of minutes). If
any code cell differs, was added or removed, the solution is executed as usual. The outputs
stay those of the last full run, so use it only for prose edits.

Both get an "Open in Colab" badge and a guarded Colab install cell built from the repository URL
in ``pyproject.toml`` (``[tool.course]``). Generation is byte-for-byte reproducible: cell ids are
numbered, metadata is reduced to tags, and the JSON is written with sorted keys. The README's
lesson table is regenerated from the lesson headers at the same time.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import jupytext
import nbformat
import tomllib  # maintainer tools need Python 3.11+

ROOT = Path(__file__).resolve().parent.parent
LESSONS = ROOT / "lessons"
LEARNER_DIR = ROOT / "notebooks"
SOLUTION_DIR = ROOT / "notebooks" / "solutions"
README = ROOT / "README.md"

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
STUB = 'raise NotImplementedError("Exercise {id}: replace this line with your code.")'
LEARNER_TAGS = {"exercise", "check"}  # tags the learner notebook keeps (tests use them)
FIRST_TRAINING_LESSON = "06"  # lessons from here on train models and take minutes to run
TABLE_START, TABLE_END = "<!-- lessons:start -->", "<!-- lessons:end -->"


class SourceError(ValueError):
    """A lesson source breaks the format; the message names the file and cell."""


@dataclass(frozen=True)
class Lesson:
    """A lesson source and what its header says about it."""

    source: Path
    number: str
    title: str
    goal: str
    time: str

    @property
    def stem(self) -> str:
        return self.source.stem

    @property
    def learner_path(self) -> Path:
        return LEARNER_DIR / f"{self.stem}.ipynb"

    @property
    def solution_path(self) -> Path:
        return SOLUTION_DIR / f"{self.stem}.ipynb"


def course_config() -> dict:
    """The ``[tool.course]`` table of pyproject.toml (repository URL and branch)."""
    with open(ROOT / "pyproject.toml", "rb") as file:
        return tomllib.load(file)["tool"]["course"]


def colab_url(notebook: Path) -> str:
    """The "Open in Colab" address of a notebook in the published repository."""
    config = course_config()
    repo = config["repository"].removeprefix("https://github.com/").rstrip("/")
    relative = notebook.resolve().relative_to(ROOT).as_posix()
    return f"https://colab.research.google.com/github/{repo}/blob/{config['branch']}/{relative}"


def read_lesson(source: Path) -> Lesson:
    """Read a lesson header: ``# Lesson NN · Title``, a ``**Goal:**`` and a ``**Time:**`` line."""
    text = source.read_text(encoding="utf-8")
    title = re.search(r"^# # Lesson (\d+) · (.+)$", text, re.MULTILINE)
    goal = re.search(r"^# \*\*Goal:\*\* (.+)$", text, re.MULTILINE)
    duration = re.search(r"^# \*\*Time:\*\* (.+)$", text, re.MULTILINE)
    if not (title and goal and duration):
        raise SourceError(
            f"{source.name}: the first cell needs '# Lesson NN · Title', '**Goal:** ...' "
            "and '**Time:** ...' lines"
        )
    return Lesson(
        source,
        title.group(1),
        title.group(2).strip(),
        goal.group(1).strip(),
        duration.group(1).strip().rstrip("."),
    )


def all_lessons() -> list[Lesson]:
    """Every lesson source, in course order."""
    return [read_lesson(p) for p in sorted(LESSONS.glob("[0-9][0-9]_*.py"))]


_QUESTION_LEAD = re.compile(r"^\s*\*\*\s*(Think|Why)\b")
_SENTENCE_END = re.compile(r"[.!?](?=\s|\*\*|$)")


def first_sentence(markdown: str) -> str:
    """The first sentence of a markdown text, with inline code and ``$math$`` removed."""
    text = re.sub(r"`[^`]*`|\$\$.*?\$\$|\$[^$]*\$", "", markdown, flags=re.DOTALL).strip()
    end = _SENTENCE_END.search(text)
    return text[: end.end()] if end else text


def asks_question(markdown: str) -> bool:
    """True if a markdown text opens with a question (``**Think``/``**Why`` or a first ``?``)."""
    return bool(_QUESTION_LEAD.match(markdown)) or first_sentence(markdown).endswith("?")


def strip_solution(code: str, exercise_id: str, where: str) -> str:
    """Replace each BEGIN/END SOLUTION region by a NotImplementedError stub at the same indent."""
    out, inside, found = [], False, False
    for line in code.split("\n"):
        marker = line.strip()
        if marker == BEGIN:
            if inside:
                raise SourceError(f"{where}: '{BEGIN}' inside another solution region")
            inside = found = True
            indent = line[: len(line) - len(line.lstrip())]
            out.append(indent + STUB.format(id=exercise_id))
        elif marker == END:
            if not inside:
                raise SourceError(f"{where}: '{END}' without a '{BEGIN}' before it")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise SourceError(f"{where}: '{BEGIN}' is never closed by '{END}'")
    if not found:
        raise SourceError(f"{where}: an exercise cell needs a '{BEGIN}' ... '{END}' region")
    return "\n".join(out)


def drop_markers(code: str) -> str:
    """The solution's code: the marker lines removed, everything else kept."""
    return "\n".join(line for line in code.split("\n") if line.strip() not in (BEGIN, END))


def _exercise_id(cells: list, index: int, where: str) -> str:
    """The id of the exercise a cell belongs to, read from the check cell that follows it."""
    for cell in cells[index + 1 :]:
        if "check" in cell.metadata.get("tags", []):
            found = re.search(r"check\(\s*['\"](\d+\.\d+)['\"]", cell.source)
            if found:
                return found.group(1)
        if "exercise" in cell.metadata.get("tags", []):
            break
    raise SourceError(
        f'{where}: an exercise cell must be followed by its check cell, check("N.M", ...)'
    )


def colab_cell() -> nbformat.NotebookNode:
    """The guarded install cell: installs the course package in Colab, does nothing elsewhere."""
    config = course_config()
    spec = f"transformers-from-scratch @ git+{config['repository']}@{config['branch']}"
    source = (
        "# In Colab, install the course's helper package (about a minute). Elsewhere: nothing.\n"
        "import sys\n"
        "\n"
        'if "google.colab" in sys.modules:\n'
        "    import subprocess\n"
        "\n"
        "    subprocess.run(\n"
        f'        [sys.executable, "-m", "pip", "install", "-q", "{spec}"], check=True\n'
        "    )"
    )
    return nbformat.v4.new_code_cell(source, metadata={"tags": ["colab-setup"]})


def build(lesson: Lesson, learner: bool) -> nbformat.NotebookNode:
    """The learner or (unexecuted) solution notebook of a lesson."""
    source = jupytext.reads(lesson.source.read_text(encoding="utf-8"), fmt="py:percent")
    cells = source.cells
    if not cells or cells[0].cell_type != "markdown":
        raise SourceError(f"{lesson.source.name}: the first cell must be the markdown title")
    out = []
    for index, cell in enumerate(cells):
        where = f"{lesson.source.name}, cell {index + 1}"
        tags = list(cell.metadata.get("tags", []))
        text = cell.source
        if cell.cell_type == "code":
            if "exercise" in tags:
                exercise_id = _exercise_id(cells, index, where)
                text = strip_solution(text, exercise_id, where) if learner else drop_markers(text)
            elif BEGIN in text or END in text:
                raise SourceError(f"{where}: solution markers outside a cell tagged 'exercise'")
        elif "solution" in tags:
            if asks_question(text):
                raise SourceError(
                    f"{where}: a cell tagged 'solution' starts with a question "
                    f"({first_sentence(text)[:60]!r}); learners would never see it. Put the "
                    "question in an untagged markdown cell and only the answer in the solution cell"
                )
            if learner:
                continue
        if learner:
            tags = [t for t in tags if t in LEARNER_TAGS]
        elif "check" in tags and "nbval-check-output" not in tags:
            tags.append("nbval-check-output")  # a check's one line is worth comparing
        metadata = {"tags": tags} if tags else {}
        new = (
            nbformat.v4.new_code_cell if cell.cell_type == "code" else nbformat.v4.new_markdown_cell
        )
        out.append(new(text, metadata=metadata))
    path = lesson.learner_path if learner else lesson.solution_path
    badge = f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab_url(path)})"
    out[0].source = f"{badge}\n\n{out[0].source}"
    out.insert(1, colab_cell())
    for number, cell in enumerate(out):
        cell.id = f"cell-{number:03d}"
    notebook = nbformat.v4.new_notebook(cells=out)
    notebook.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    nbformat.validate(notebook)
    return notebook


def dumps(notebook: nbformat.NotebookNode) -> str:
    """Serialise reproducibly (sorted keys, one-space indent, trailing newline)."""
    return json.dumps(notebook, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def without_outputs(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy with outputs, execution counts and widget state removed: what a solution came from."""
    bare = copy.deepcopy(notebook)
    bare.metadata.pop("widgets", None)
    for cell in bare.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return bare


def execute(notebook: nbformat.NotebookNode, workdir: Path, timeout: int = 1200) -> float:
    """Run a notebook in a fresh kernel, in place; return the seconds it took."""
    from nbclient import NotebookClient

    metadata = copy.deepcopy(notebook.metadata)
    start = time.perf_counter()
    NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        record_timing=False,
        resources={"metadata": {"path": str(workdir)}},
    ).execute()
    seconds = time.perf_counter() - start
    widget_state = notebook.metadata.get("widgets")
    notebook.metadata = metadata  # the kernel adds its Python version: keep output machine-free
    if widget_state:
        notebook.metadata["widgets"] = widget_state  # lets viewers draw widgets without a kernel
    return seconds


def lessons_to_prime(lesson: Lesson, lessons: list[Lesson]) -> list[Lesson]:
    """Earlier lessons whose parts are not on record yet in this run's course cache.

    Lessons from 06 on build their models from the learner's recorded parts. A solution
    notebook should show every part as "yours", so before executing it the build runs
    the earlier lessons that record the missing parts (into the same cache, unsaved).
    Only the short lessons are run this way: a part of a training lesson (06's pooling)
    serves that lesson alone.
    """
    from course_utils import parts

    numbers = set()
    for name, exercise in parts.PARTS.items():
        number = exercise.split(".")[0].zfill(2)
        if number < min(lesson.number, FIRST_TRAINING_LESSON) and not parts.recorded(name):
            numbers.add(number)
    return [earlier for earlier in lessons if earlier.number in numbers]


def reuse_outputs(notebook: nbformat.NotebookNode, committed_path: Path) -> bool:
    """Copy the committed solution's outputs into ``notebook`` if no code cell changed."""
    if not committed_path.exists():
        return False
    committed = nbformat.reads(committed_path.read_text(encoding="utf-8"), as_version=4)
    old = [c for c in committed.cells if c.cell_type == "code"]
    new = [c for c in notebook.cells if c.cell_type == "code"]
    if [c.source for c in old] != [c.source for c in new]:
        return False
    for old_cell, new_cell in zip(old, new, strict=True):
        new_cell.outputs = copy.deepcopy(old_cell.outputs)
        new_cell.execution_count = old_cell.execution_count
    if "widgets" in committed.metadata:
        notebook.metadata["widgets"] = copy.deepcopy(committed.metadata["widgets"])
    return True


def readme_table(lessons: list[Lesson]) -> str:
    """The README's lesson table, one row per lesson with its Colab links."""
    rows = [
        "| # | lesson | goal | time | open |",
        "|---|---|---|---|---|",
    ]
    for lesson in lessons:
        learner = lesson.learner_path.relative_to(ROOT).as_posix()
        solution = lesson.solution_path.relative_to(ROOT).as_posix()
        rows.append(
            f"| {lesson.number} | [{lesson.title}]({learner}) | {lesson.goal} | {lesson.time} | "
            f"[Colab]({colab_url(lesson.learner_path)}) · [solution]({solution}) |"
        )
    return "\n".join(rows)


def updated_readme(lessons: list[Lesson]) -> str:
    """README.md with the text between the lesson-table markers regenerated."""
    text = README.read_text(encoding="utf-8")
    start, end = text.find(TABLE_START), text.find(TABLE_END)
    if start < 0 or end < start:
        raise SourceError(f"README.md needs the markers {TABLE_START} and {TABLE_END}")
    return text[: start + len(TABLE_START)] + "\n" + readme_table(lessons) + "\n" + text[end:]


def stale_files(lessons: list[Lesson]) -> list[str]:
    """Generated files that do not match their sources (missing, edited or out of date)."""
    stale = []
    for lesson in lessons:
        if not lesson.learner_path.exists() or (
            lesson.learner_path.read_text(encoding="utf-8") != dumps(build(lesson, learner=True))
        ):
            stale.append(str(lesson.learner_path.relative_to(ROOT)))
        if not lesson.solution_path.exists() or dumps(
            without_outputs(nbformat.reads(lesson.solution_path.read_text(encoding="utf-8"), 4))
        ) != dumps(build(lesson, learner=False)):
            stale.append(str(lesson.solution_path.relative_to(ROOT)))
    if README.read_text(encoding="utf-8") != updated_readme(all_lessons()):
        stale.append("README.md (lesson table)")
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("lessons", nargs="*", help="lesson numbers, e.g. 02 (default: all)")
    parser.add_argument("--no-execute", action="store_true", help="write solutions unexecuted")
    parser.add_argument(
        "--reuse-outputs",
        action="store_true",
        help="if no code cell changed, keep the committed solution outputs instead of executing",
    )
    parser.add_argument("--check", action="store_true", help="only report stale files")
    args = parser.parse_args(argv)

    lessons = all_lessons()
    if args.lessons:
        wanted = {n.zfill(2) for n in args.lessons}
        lessons = [lesson for lesson in lessons if lesson.number in wanted]
        missing = wanted - {lesson.number for lesson in lessons}
        if missing:
            parser.error(f"no lesson source for {', '.join(sorted(missing))} in {LESSONS}")
    if args.check:
        stale = stale_files(lessons)
        for name in stale:
            print(f"stale: {name}")
        if stale:
            print("Run `python tools/build_notebooks.py` and commit the result.")
        return 1 if stale else 0

    SOLUTION_DIR.mkdir(parents=True, exist_ok=True)
    for lesson in lessons:
        lesson.learner_path.write_text(dumps(build(lesson, learner=True)), encoding="utf-8")
        solution = build(lesson, learner=False)
        if args.reuse_outputs and reuse_outputs(solution, lesson.solution_path):
            print(f"{lesson.stem}: code unchanged, committed outputs reused")
        elif not args.no_execute:
            for earlier in lessons_to_prime(lesson, all_lessons()):
                seconds = execute(build(earlier, learner=False), SOLUTION_DIR)
                print(
                    f"{lesson.stem}: ran {earlier.stem} first to record its parts ({seconds:.0f} s)"
                )
            seconds = execute(solution, SOLUTION_DIR)
            print(f"{lesson.stem}: executed in {seconds:.1f} s")
        lesson.solution_path.write_text(dumps(solution), encoding="utf-8")
        size = lesson.solution_path.stat().st_size / 1024
        print(f"{lesson.stem}: wrote {lesson.learner_path.name} and solutions/ ({size:.0f} KiB)")
    README.write_text(updated_readme(all_lessons()), encoding="utf-8")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except SourceError as error:
        sys.exit(f"error: {error}")
