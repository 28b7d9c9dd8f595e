"""Grade learners' notebooks: ``python -m course_utils.grade NOTEBOOK... [--timeout S] [--csv F]``.

Each notebook runs in a fresh kernel, in its own process, on a throwaway copy in a
throwaway working directory, with its own record of parts (``COURSE_PARTS_DIR``), so no
notebook can change another's result. A notebook that raises keeps running (every cell
is tried); one that hangs is stopped at the time limit; one that kills its kernel or
deletes files ends only its own run. The verdicts are read from the outputs of the
``check("N.M", ...)`` cells.

The report is one table per class (the notebooks of one folder): a row per learner
(the notebook's file name), a column per exercise, each cell one of ``passed``,
``failed: <the checker's sentence>``, ``not attempted`` (an untouched stub),
``crashed: <error>``, or ``not run`` (the notebook stopped before that check).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Report", "grade_notebook", "grade_notebooks", "main", "render_table"]

_CHECK_CALL = re.compile(r"""\bcheck\(\s*["'](\d+\.\d+)["']""")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
PASSED, NOT_ATTEMPTED, NOT_RUN = "passed", "not attempted", "not run"
KERNEL_NAME = "course-grader"


@dataclass
class Report:
    """One notebook's verdicts: exercise id -> verdict, and what stopped it, if anything."""

    notebook: Path
    verdicts: dict[str, str] = field(default_factory=dict)
    stopped: str = ""

    @property
    def learner(self) -> str:
        """The learner's name: the notebook's file name without ``.ipynb``."""
        return self.notebook.stem


def _one_line(text: str, limit: int = 160) -> str:
    text = " ".join(_ANSI.sub("", text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _cell_verdict(exercise_id: str, cell: dict) -> str:
    """The verdict a check cell's outputs show."""
    outputs = cell.get("outputs", [])
    for output in outputs:
        if output.get("output_type") == "error":
            name, value = output.get("ename", ""), output.get("evalue", "")
            if name == "CheckFailed":
                sentence = _ANSI.sub("", value).removeprefix(f"{exercise_id} ")
                return f"failed: {_one_line(sentence.split(': ', 1)[-1])}"
            if name == "NotImplementedError":
                return NOT_ATTEMPTED
            return f"crashed: {_one_line(f'{name}: {value}'.splitlines()[0])}"
    text = "".join("".join(o.get("text", "")) for o in outputs if o.get("output_type") == "stream")
    if f"✓ {exercise_id} " in text:
        return PASSED
    return NOT_RUN


def verdicts_of(notebook: dict) -> dict[str, str]:
    """Exercise id -> verdict, from an executed notebook's check cells (first check of each)."""
    verdicts: dict[str, str] = {}
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        source = "".join(cell.get("source", ""))
        for exercise_id in _CHECK_CALL.findall(source):
            if cell.get("execution_count") is None and not cell.get("outputs"):
                verdicts.setdefault(exercise_id, NOT_RUN)
            else:
                verdicts.setdefault(exercise_id, _cell_verdict(exercise_id, cell))
    return verdicts


def _run_in_this_process(notebook_path: Path, workdir: Path, progress: Path) -> None:
    """Execute the notebook in a fresh kernel; after each cell, save it to ``progress``."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(notebook_path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None

    def save(**_: object) -> None:
        temporary = progress.with_suffix(".tmp")
        nbformat.write(notebook, temporary)
        os.replace(temporary, progress)

    client = NotebookClient(
        notebook,
        timeout=None,  # the parent enforces the time limit for the whole notebook
        allow_errors=True,
        kernel_name=KERNEL_NAME,
        resources={"metadata": {"path": str(workdir)}},
        on_cell_executed=save,
    )
    try:
        client.execute()
    finally:
        save()


def grade_notebook(notebook: Path, *, timeout: float = 600.0) -> Report:
    """Run one notebook in its own process and kernel (at most ``timeout`` seconds)."""
    notebook = Path(notebook)
    report = Report(notebook)
    with tempfile.TemporaryDirectory(prefix="grade-") as scratch:
        scratch_path = Path(scratch)
        workdir, parts, results = (scratch_path / n for n in ("work", "parts", "results"))
        for folder in (workdir, parts, results):
            folder.mkdir()
        copy = workdir / notebook.name
        shutil.copyfile(notebook, copy)
        progress = results / "executed.ipynb"
        # A kernel spec of our own: the kernel runs this Python (the course's environment),
        # whatever "python3" kernel the instructor's Jupyter has installed.
        spec = scratch_path / "jupyter" / "kernels" / KERNEL_NAME
        spec.mkdir(parents=True)
        argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        kernel = {"argv": argv, "display_name": "course grader", "language": "python"}
        (spec / "kernel.json").write_text(json.dumps(kernel), encoding="utf-8")
        env = {
            **os.environ,
            "COURSE_PARTS_DIR": str(parts),
            "PYTHONPATH": _package_root(),
            "JUPYTER_PATH": str(scratch_path / "jupyter"),
        }
        command = [sys.executable, "-m", "course_utils.grade", "--run-one", str(copy)]
        command += ["--workdir", str(workdir), "--progress", str(progress)]
        process = subprocess.Popen(
            command,
            env=env,
            cwd=workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,  # one process group: the kernel is stopped with it
        )
        try:
            _, stderr = process.communicate(timeout=timeout)
            if process.returncode != 0:
                lines = stderr.decode(errors="replace").strip().splitlines()
                last = lines[-1] if lines else f"exit status {process.returncode}"
                if "DeadKernelError" in last:
                    last = "the kernel died (os._exit, a crash in native code, or no memory)"
                report.stopped = _one_line(f"the run stopped: {last}")
        except subprocess.TimeoutExpired:
            _stop(process)
            report.stopped = f"time limit of {timeout:g} s reached"
        expected = _check_ids(notebook)
        executed = _read(progress)
        found = verdicts_of(executed) if executed else {}
        report.verdicts = {i: found.get(i, NOT_RUN) for i in expected}
    return report


def _stop(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.communicate()  # reap it and close its pipe


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _check_ids(notebook: Path) -> list[str]:
    data = _read(notebook) or {}
    ids: list[str] = []
    for cell in data.get("cells", []):
        if cell.get("cell_type") == "code":
            for exercise_id in _CHECK_CALL.findall("".join(cell.get("source", ""))):
                if exercise_id not in ids:
                    ids.append(exercise_id)
    return ids


def _package_root() -> str:
    root = str(Path(__file__).resolve().parent.parent)
    existing = os.environ.get("PYTHONPATH")
    return root if not existing else os.pathsep.join([root, existing])


def grade_notebooks(notebooks: Sequence[Path], *, timeout: float = 600.0) -> list[Report]:
    """Grade every notebook, one after another, whatever happens to any of them."""
    return [grade_notebook(Path(n), timeout=timeout) for n in notebooks]


def _exercise_order(exercise_id: str) -> tuple[int, ...]:
    return tuple(int(part) for part in exercise_id.split("."))


def _classes(reports: Sequence[Report]) -> dict[str, list[Report]]:
    classes: dict[str, list[Report]] = {}
    for report in reports:
        classes.setdefault(str(report.notebook.parent), []).append(report)
    return classes


def render_table(reports: Sequence[Report]) -> str:
    """One plain-text table per class (folder): a row per learner, a column per exercise."""
    blocks = []
    for folder, members in _classes(reports).items():
        ids = sorted({i for r in members for i in r.verdicts}, key=_exercise_order)
        header = ["learner", *ids, "note"]
        rows = [[r.learner, *(r.verdicts.get(i, "—") for i in ids), r.stopped] for r in members]
        widths = [max(len(str(row[c])) for row in [header, *rows]) for c in range(len(header))]
        lines = [f"class: {folder}"]
        for row in [header, ["-" * w for w in widths], *rows]:
            lines.append("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)))
        blocks.append("\n".join(line.rstrip() for line in lines))
    return "\n\n".join(blocks)


def write_csv(reports: Sequence[Report], path: Path) -> None:
    """One row per (class, learner, exercise): its verdict, and what stopped the notebook."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["class", "learner", "exercise", "verdict", "note"])
        for report in reports:
            for exercise_id, verdict in sorted(
                report.verdicts.items(), key=lambda item: _exercise_order(item[0])
            ):
                writer.writerow(
                    [
                        str(report.notebook.parent),
                        report.learner,
                        exercise_id,
                        verdict,
                        report.stopped,
                    ]
                )


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: grade notebooks, print the tables, optionally write a CSV."""
    parser = argparse.ArgumentParser(prog="python -m course_utils.grade", description=__doc__)
    parser.add_argument("notebooks", nargs="*", type=Path, help="learner notebooks (.ipynb)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per notebook")
    parser.add_argument("--csv", type=Path, help="also write the verdicts to this CSV file")
    parser.add_argument("--run-one", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--progress", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run_one:  # the child process of one notebook's run
        _run_in_this_process(args.run_one, args.workdir, args.progress)
        return 0
    if not args.notebooks:
        parser.error("give at least one notebook")
    missing = [str(n) for n in args.notebooks if not n.is_file()]
    if missing:
        parser.error(f"no such notebook: {', '.join(missing)}")
    if args.timeout <= 0:
        parser.error(f"--timeout must be positive, got {args.timeout}")
    reports = grade_notebooks(args.notebooks, timeout=args.timeout)
    print(render_table(reports))
    if args.csv:
        write_csv(reports, args.csv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
