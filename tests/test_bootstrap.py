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


class _Recorder:
    """Stands in for bootstrap.run: records each command, fails those containing ``failing``."""

    def __init__(self, failing: str | None = None):
        self.commands: list[list[str]] = []
        self.failing = failing

    def __call__(self, *command) -> int:
        words = [str(c) for c in command]
        self.commands.append(words)
        return 1 if self.failing and self.failing in " ".join(words) else 0


@pytest.fixture
def installing(tmp_path, monkeypatch):
    """``install(extra, failing=None, with_uv=True)``: run install_course against a fake
    environment; returns (status, commands run, the environment's python, bootstrap)."""
    bootstrap = _bootstrap()
    monkeypatch.delenv("COURSE_INSTALLER", raising=False)
    python = tmp_path / "bin" / "python"
    python.parent.mkdir()
    python.touch()

    def install(extra: str, failing: str | None = None, with_uv: bool = True):
        if with_uv:
            (tmp_path / "bin" / "uv").touch()
        recorder = _Recorder(failing)
        monkeypatch.setattr(bootstrap, "run", recorder)
        return bootstrap.install_course(python, extra), recorder.commands, python, bootstrap

    return install


def _pip(python, extra: str) -> list[str]:
    return [str(python), "-m", "pip", "install", "--no-compile", "-e", f".[{extra}]"]


def test_the_course_goes_in_with_uv_when_the_environment_has_it(installing):
    status, commands, python, _ = installing("dev")
    uv = str(python.parent / "uv")
    assert status == 0
    assert commands == [[uv, "pip", "install", "--python", str(python), "--quiet", "-e", ".[dev]"]]


def test_a_failing_uv_hands_the_install_to_pip_and_says_so(installing, capsys):
    status, commands, python, _ = installing("lab", failing="uv pip install")
    assert status == 0
    assert commands[-1] == _pip(python, "lab")
    assert "pip tries instead" in capsys.readouterr().out


def test_uv_that_cannot_be_installed_leaves_the_job_to_pip(installing, capsys):
    status, commands, python, bootstrap = installing("dev", failing="uv==", with_uv=False)
    assert status == 0
    assert commands[0][1:4] == ["-m", "pip", "install"]
    assert f"uv=={bootstrap.UV_VERSION}" in commands[0]
    assert commands[-1] == _pip(python, "dev")
    assert "could not install uv" in capsys.readouterr().out


def test_course_installer_pip_never_touches_uv(installing, monkeypatch):
    monkeypatch.setenv("COURSE_INSTALLER", "pip")
    status, commands, python, _ = installing("dev")
    assert status == 0
    assert commands == [_pip(python, "dev")]


def test_lab_and_tests_run_with_bytecode_kept(monkeypatch, tmp_path, capsys):
    """Docker's Python images set PYTHONDONTWRITEBYTECODE; kernels would compile torch anew."""
    bootstrap = _bootstrap()
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    monkeypatch.setattr(bootstrap, "ensure_environment", lambda extra: tmp_path / "python")
    assert bootstrap.main(["lab", "--dry-run"]) == 0
    assert "PYTHONDONTWRITEBYTECODE" not in os.environ
    assert "jupyterlab" in capsys.readouterr().out


@pytest.mark.parametrize(("cores", "processes"), [(1, 2), (2, 3), (3, 4), (16, 4)])
def test_one_test_process_more_than_cores_at_most_four(monkeypatch, cores, processes):
    bootstrap = _bootstrap()
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    assert bootstrap.test_processes() == processes


def test_tests_run_in_that_many_processes(monkeypatch, tmp_path):
    bootstrap = _bootstrap()
    commands = []
    monkeypatch.setattr(bootstrap, "ensure_environment", lambda extra: tmp_path / "python")
    monkeypatch.setattr(bootstrap, "run", lambda *command: commands.append(command) or 0)
    monkeypatch.setattr(bootstrap, "start_beside", lambda *command: commands.append(command))
    monkeypatch.setattr(bootstrap, "finish", lambda process: 0)
    monkeypatch.setattr(bootstrap, "test_processes", lambda: 3)
    for name in ("OMP_WAIT_POLICY", "PYTHONDONTWRITEBYTECODE"):  # main() changes both
        monkeypatch.setenv(name, "1")
    assert bootstrap.main(["test", "-x"]) == 0
    pytest_command = next(c for c in commands if c[1:3] == ("-m", "pytest"))
    assert pytest_command[3:] == ("-n", "3", "--dist", "loadgroup", "-x")
    assert [c[1:] for c in commands].index(("-m", "mypy")) < commands.index(pytest_command)


def test_a_command_beside_the_tests_reports_after_them_and_its_status_counts(capsys):
    bootstrap = _bootstrap()
    code = "import sys; print('type', 'error', 'here'); sys.exit(1)"
    process = bootstrap.start_beside(sys.executable, "-c", code)
    try:
        process.wait(timeout=60)
        assert "type error here" not in capsys.readouterr().out  # kept until finish()
    finally:
        status = bootstrap.finish(process)
    assert status == 1
    assert "type error here" in capsys.readouterr().out


def test_torch_is_compiled_beside_the_install_with_bytecode_kept(monkeypatch, tmp_path):
    """The background import of PyTorch may write bytecode even where the machine forbids it."""
    bootstrap = _bootstrap()
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    seen = tmp_path / "seen"
    fake = tmp_path / "python"
    fake.write_text(f'#!/bin/sh\necho "${{PYTHONDONTWRITEBYTECODE:-unset}} $1 $2" > {seen}\n')
    fake.chmod(0o755)
    assert bootstrap.compile_torch_beside(fake).wait(timeout=60) == 0
    flag, option, code = seen.read_text().split(" ", 2)
    assert (flag, option) == ("unset", "-c") and "import torch" in code


def test_torch_compiled_before_is_not_imported_again(tmp_path):
    bootstrap = _bootstrap()
    environment = {**os.environ, "PYTHONPYCACHEPREFIX": str(tmp_path)}
    find = "import importlib.util as u; print(u.cache_from_source(u.find_spec('torch').origin))"
    compiled = subprocess.run(
        [sys.executable, "-c", find], env=environment, capture_output=True, text=True, check=True
    ).stdout.strip()
    Path(compiled).parent.mkdir(parents=True)
    Path(compiled).touch()
    script = bootstrap.COMPILE_TORCH + "\nraise SystemExit(3)"  # 3: it went on to import torch
    result = subprocess.run([sys.executable, "-c", script], env=environment, timeout=60)
    assert result.returncode == 0
