"""bootstrap.py: the JupyterLab command it builds, as root and not, and a real start that
prints the address of lesson 01 (stopped as soon as it does)."""

from __future__ import annotations

import importlib.util
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
START_SECONDS = 120  # JupyterLab starts in 3 s on an idle laptop; a loaded CI machine is slower


def _bootstrap():
    spec = importlib.util.spec_from_file_location("bootstrap", ROOT / "bootstrap.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_lab_opens_lesson_01_from_the_notebooks_folder():
    bootstrap = _bootstrap()
    command = bootstrap.lab_command("/env/bin/python", euid=1000)
    assert command[:3] == ["/env/bin/python", "-m", "jupyterlab"]
    assert f"--ServerApp.root_dir={ROOT / 'notebooks'}" in command
    assert str(ROOT / "notebooks" / "01_embeddings.ipynb") in command
    assert (ROOT / "notebooks" / bootstrap.FIRST_LESSON).is_file()
    assert "--allow-root" not in command


def test_lab_as_root_is_allowed_and_says_so(monkeypatch, capsys):
    bootstrap = _bootstrap()
    assert bootstrap.lab_command("python", euid=0)[-1] == "--allow-root"
    monkeypatch.setattr(bootstrap.subprocess, "Popen", _FakeLab)
    assert bootstrap.open_lab(bootstrap.lab_command("python", euid=0)) == 0
    out = capsys.readouterr().out
    assert out.count("--allow-root, so it is added") == 1
    expected = "open at http://localhost:8888/lab/tree/01_embeddings.ipynb?token=abc (Ctrl+C"
    assert out.count(expected) == 1  # announced once, though JupyterLab prints it twice


class _FakeLab:
    """Prints what JupyterLab prints around its address, then exits."""

    def __init__(self, command, **kwargs):
        self.stdout = iter(
            [
                "[I ServerApp] Jupyter Server 2.21.1 is running at:\n",
                "[I ServerApp] http://localhost:8888/lab?token=abc\n",
                "        http://localhost:8888/lab?token=abc\n",
            ]
        )

    def wait(self):
        return 0


@pytest.mark.parametrize("argv", [["lab", "--bogus"], ["serve"]])
def test_unknown_arguments_print_the_usage_before_installing_anything(argv, capsys):
    assert _bootstrap().main(argv) == 1
    assert "usage: python3 bootstrap.py" in capsys.readouterr().err


@pytest.mark.slow
def test_jupyterlab_really_starts_and_bootstrap_prints_the_address(tmp_path):
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import bootstrap; "
        "sys.exit(bootstrap.open_lab(bootstrap.lab_command(sys.executable)))"
    )
    env = {
        **os.environ,
        "BROWSER": "true",  # a browser that opens nothing
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_DATA_DIR": str(tmp_path / "data"),
    }
    lab = subprocess.Popen(
        [sys.executable, "-c", code, str(ROOT)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
        start_new_session=True,  # so the whole group (JupyterLab too) can be stopped
    )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in lab.stdout], daemon=True)
    reader.start()
    seen = []
    deadline = time.monotonic() + START_SECONDS
    try:
        while not any(line.startswith("[bootstrap] the course is open at") for line in seen):
            seen.append(lines.get(timeout=max(deadline - time.monotonic(), 0.1)))
    except queue.Empty:
        pytest.fail(f"no address within {START_SECONDS} s; JupyterLab said:\n{''.join(seen)}")
    finally:
        os.killpg(lab.pid, signal.SIGTERM)
        lab.wait(timeout=30)
        reader.join(timeout=30)  # the pipe ends once JupyterLab has stopped
        lab.stdout.close()
    assert "/lab/tree/01_embeddings.ipynb?token=" in seen[-1]
    as_root = any("--allow-root, so it is added" in line for line in seen)
    assert as_root == (os.geteuid() == 0)
