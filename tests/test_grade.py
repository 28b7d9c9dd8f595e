"""The instructors' grader on a class of generated learner notebooks: completed, partly
completed, stubs only, a crash inside a check, a killed kernel, an endless loop, and a
notebook that deletes the files around it."""

from __future__ import annotations

import csv
from pathlib import Path

import nbformat
import pytest

from course_utils import grade

pytestmark = pytest.mark.slow  # each notebook starts a kernel

HEADER = "from course_utils.exercises import check\nimport torch"
RIGHT_CAUSAL = "def causal_mask(seq):\n    return torch.ones(seq, seq, dtype=torch.bool).tril()"
RIGHT_PADDING = (
    "def padding_mask(lengths, seq):\n    return torch.arange(seq)[None, :] < lengths[:, None]"
)
WRONG_PADDING = (
    "def padding_mask(lengths, seq):\n    return torch.arange(seq)[None, :] >= lengths[:, None]"
)
STUB = "def {name}(*args):\n    raise NotImplementedError('replace this line with your code')"
CRASHING_PADDING = "def padding_mask(lengths, seq):\n    return lengths[seq + 10]"


def notebook(path: Path, *cells: str) -> Path:
    """Write a learner notebook whose code cells are ``cells``."""
    book = nbformat.v4.new_notebook()
    book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    book.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(book, path)
    return path


def two_checks(first: str, second: str, between: str = "") -> list[str]:
    cells = [HEADER, first, 'check("2.2", causal_mask)']
    if between:
        cells.append(between)
    return [*cells, second, 'check("2.3", padding_mask)']


@pytest.fixture(scope="module")
def class_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("class") / "class_a"
    notebook(folder / "ada.ipynb", *two_checks(RIGHT_CAUSAL, RIGHT_PADDING))
    notebook(folder / "ben.ipynb", *two_checks(RIGHT_CAUSAL, WRONG_PADDING))
    notebook(
        folder / "cy.ipynb",
        *two_checks(STUB.format(name="causal_mask"), STUB.format(name="padding_mask")),
    )
    notebook(folder / "dee.ipynb", *two_checks(RIGHT_CAUSAL, CRASHING_PADDING))
    notebook(
        folder / "eve.ipynb", *two_checks(RIGHT_CAUSAL, RIGHT_PADDING, "import os\nos._exit(1)")
    )
    notebook(
        folder / "fay.ipynb",
        *two_checks(
            RIGHT_CAUSAL,
            RIGHT_PADDING,
            "import os, shutil\nfor name in os.listdir('.'):\n    os.remove(name)",
        ),
    )
    return folder


@pytest.fixture(scope="module")
def reports(class_folder) -> dict[str, grade.Report]:
    found = grade.grade_notebooks(sorted(class_folder.glob("*.ipynb")), timeout=120)
    return {report.learner: report for report in found}


def test_completed_notebook_passes_every_exercise(reports):
    assert reports["ada"].verdicts == {"2.2": "passed", "2.3": "passed"}
    assert reports["ada"].stopped == ""


def test_partly_completed_notebook_gets_the_checkers_sentence(reports):
    verdicts = reports["ben"].verdicts
    assert verdicts["2.2"] == "passed"
    assert verdicts["2.3"].startswith("failed: your mask is inverted")


def test_stubs_only_are_not_attempted(reports):
    assert reports["cy"].verdicts == {"2.2": "not attempted", "2.3": "not attempted"}


def test_a_crash_inside_a_check_is_reported_as_crashed(reports):
    assert reports["dee"].verdicts["2.2"] == "passed"
    assert reports["dee"].verdicts["2.3"].startswith("crashed: IndexError")


def test_killed_kernel_ends_only_its_own_notebook(reports):
    assert reports["eve"].verdicts == {"2.2": "passed", "2.3": "not run"}
    assert reports["eve"].stopped.startswith("the run stopped: the kernel died")
    assert reports["fay"].verdicts == {"2.2": "passed", "2.3": "passed"}  # graded after eve


def test_deleting_files_touches_only_the_throwaway_copy(reports, class_folder):
    assert (class_folder / "fay.ipynb").is_file()
    assert len(list(class_folder.glob("*.ipynb"))) == 6


def test_table_and_csv(reports, tmp_path, capsys):
    listed = list(reports.values())
    table = grade.render_table(listed)
    assert table.startswith("class: ") and table.count("class: ") == 1
    lines = table.splitlines()
    assert "2.2" in lines[1] and "2.3" in lines[1]
    assert sum(line.startswith(("ada ", "ben ", "cy ", "dee ", "eve ", "fay ")) for line in lines)
    ben = next(line for line in lines if line.startswith("ben "))
    assert "failed: your mask is inverted" in ben
    path = tmp_path / "grades.csv"
    grade.write_csv(listed, path)
    with path.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 12
    assert {r["verdict"] for r in rows if r["learner"] == "cy"} == {"not attempted"}


def test_command_line_stops_an_endless_loop_at_its_time_limit_and_writes_csv(tmp_path, capsys):
    looping = notebook(
        tmp_path / "class_b" / "gus.ipynb",
        # a loop that never ends, asleep so that it holds no core the other tests need
        *two_checks(RIGHT_CAUSAL, RIGHT_PADDING, "import time\nwhile True:\n    time.sleep(1)"),
    )
    out = tmp_path / "out.csv"
    assert grade.main([str(looping), "--timeout", "25", "--csv", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "gus" in printed and "time limit of 25 s reached" in printed
    with out.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert {row["exercise"]: row["verdict"] for row in rows} == {"2.2": "passed", "2.3": "not run"}
    assert {row["note"] for row in rows} == {"time limit of 25 s reached"}


def test_command_line_rejects_missing_notebooks(tmp_path):
    with pytest.raises(SystemExit):
        grade.main([str(tmp_path / "absent.ipynb")])
