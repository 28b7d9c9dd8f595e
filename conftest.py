"""The one place that sets up the environment of a test run (nbval's kernels inherit it).

Data: the real files under ``../shared/data`` when they are there (``COURSE_SHARED_DATA``
moves that folder), otherwise tiny fixtures written into a throwaway folder by
``tests/standins/fixtures.py``, so every test runs on a fresh machine without network.
The header of the run says which. Downloads go to a throwaway cache, never into the
repository's ``data/``, and the network is never tried (``HF_HUB_OFFLINE=1``).

Each default is set only when the variable is unset, so `COURSE_QUICK=0 pytest
notebooks/solutions` runs the long lessons at full size before teaching, and a variable
pointing at another file wins over both the shared folder and the fixtures.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
SHARED = Path(os.environ.get("COURSE_SHARED_DATA", ROOT.parent / "shared" / "data"))
SHARED_FILES = {
    "NLTK_DATA": ("nltk_data", "nltk_data/corpora/brown.zip"),
    "COURSE_YELP_TRAIN": ("yelp/kaggle_yelp10k/train.csv",) * 2,
    "COURSE_YELP_TEST": ("yelp/kaggle_yelp10k/test.csv",) * 2,
    "COURSE_CROWS_PAIRS": ("crows_pairs/crows_pairs_anonymized.csv",) * 2,
}


def _throwaway(prefix: str) -> str:
    folder = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def _data_environment() -> str:
    """Point every data variable at real or generated files; return one line saying which."""
    os.environ.setdefault("COURSE_QUICK", "1")  # smoke-test sizes for the training lessons
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never use the network
    if "COURSE_DATA_DIR" not in os.environ:
        os.environ["COURSE_DATA_DIR"] = _throwaway("course-data-")
    sources = {}
    missing = []
    for variable, (value, marker) in SHARED_FILES.items():
        if variable in os.environ:
            sources[variable] = "set before the run"
        elif (SHARED / marker).is_file():
            os.environ[variable] = str(SHARED / value)
            sources[variable] = "shared"
        else:
            missing.append(variable)
    if missing:
        from tests.standins.fixtures import write_data

        generated = write_data(_throwaway("course-fixtures-"))
        for variable in missing:
            os.environ[variable] = generated[variable]
            sources[variable] = "fixture"
    kinds = set(sources.values())
    if kinds == {"shared"}:
        return f"course data: the real files in {SHARED}"
    if kinds == {"fixture"}:
        return f"course data: tiny generated fixtures (no {SHARED}); numbers differ from real data"
    return "course data: " + ", ".join(f"{v} {s}" for v, s in sources.items())


DATA_LINE = _data_environment()


def pytest_configure(config) -> None:
    """Several test processes: one PyTorch thread each (their kernels inherit it).

    Three test processes on two cores, each with a thread per core, keep six threads
    waiting on one another for a model this small: the whole run took 166 s, and 151 s
    with one thread per process. Runs in the main process before pytest-xdist starts the
    others; a variable set before the run wins.
    """
    processes = getattr(config.option, "numprocesses", None)
    if isinstance(processes, int) and processes > 1:
        os.environ.setdefault("OMP_NUM_THREADS", "1")


def pytest_report_header(config) -> str:
    """Say once, at the top of the run, which data the tests use."""
    return DATA_LINE


@pytest.fixture(autouse=True)
def _a_record_of_parts_per_test(tmp_path_factory, monkeypatch):
    """Each test keeps the parts its checks pass in a folder of its own.

    Without this, a test that checks a (valid) learner implementation would leave it on
    record for every later test and notebook of the run, in whatever order the test
    processes happen to run them. nbval's notebook cells are not test functions, so the
    solution notebooks still share one record, in lesson order, as a learner's would.
    """
    from course_utils import parts

    monkeypatch.setenv("COURSE_PARTS_DIR", str(tmp_path_factory.mktemp("parts")))
    parts._loaded.clear()
    parts._passed_now.clear()
    yield
    parts._loaded.clear()
    parts._passed_now.clear()


# Test files whose tests each go to whichever process is free: the learner notebooks, each
# a long run of its own. Every other file goes whole to one process, so that its module-
# and class-scoped fixtures (a class graded, the hub stand-ins, a model trained once) are
# built once; a notebook's cells go whole to one process, in order, in one kernel.
SPREAD_FILES = {"tests/test_notebooks.py"}
LEARNER_RUN = "tests/test_notebooks.py::test_learner_notebook_fails_only_at_checks"
SLOW_WEIGHT = 20  # a slow test (a notebook cell, a kernel, a training) costs about 20 quick ones


def _work_unit(nodeid: str) -> str:
    """The unit of work a test belongs to: its file, or itself in ``SPREAD_FILES``."""
    path = nodeid.split("::", 1)[0]
    return nodeid if path in SPREAD_FILES else path


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadgroup`` as this suite needs it: groups are files, but ``SPREAD_FILES``.

    pytest-xdist's own loadgroup reads ``xdist_group`` marks by rewriting node ids, which
    pytest 9 no longer allows, so the marks would be ignored and a notebook's cells split
    between processes. The work units keep the collection's order, costliest first (see
    below), instead of xdist's default of the file with the most tests first.
    """
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class FileGroups(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _work_unit(nodeid)

    config.option.loadscopereorder = False
    return FileGroups(config, log)


def pytest_collection_modifyitems(config, items) -> None:
    """Mark nbval's notebook cells slow, then put the biggest units of work first.

    ``make test-fast`` leaves the slow tests out. Under pytest-xdist the README's test
    command hands out work units (see ``pytest_xdist_make_scheduler``) in this order, and
    a unit started last decides when the run ends; so the units are sorted by their
    expected cost, a slow test counting as ``SLOW_WEIGHT`` quick ones. The sort is stable:
    a notebook's cells keep their order. Notebooks may run side by side: a solution
    notebook that finds an earlier lesson's part not yet on record uses the reference,
    which computes the same numbers, and says so only in unchecked output.
    """
    for item in items:
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.slow)
    cost: Counter[str] = Counter()
    for item in items:
        cost[_work_unit(item.nodeid)] += SLOW_WEIGHT if item.get_closest_marker("slow") else 1
    # A run of a learner notebook costs about what nbval's run of its solution costs (the same
    # cells), not one slow test: priced so, they start among the notebooks, not at the end.
    for item in items:
        if item.nodeid.startswith(LEARNER_RUN):
            lesson = item.nodeid.rsplit("[", 1)[-1].rstrip("]")
            solution = f"notebooks/solutions/{lesson}.ipynb"
            cost[item.nodeid] = max(cost[item.nodeid], cost[solution])
    items.sort(key=lambda item: -cost[_work_unit(item.nodeid)])
