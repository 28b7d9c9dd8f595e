"""Set up the course in a virtual environment, then open it or test it.

    python3 bootstrap.py         # install everything into .venv and open the course in JupyterLab
    python3 bootstrap.py test    # install everything, with the test tools, and run all tests
    python3 bootstrap.py lab --dry-run   # install, then only print the JupyterLab command

Needs only Python 3.10 or newer (3.11+ for the test suite); everything else is installed
into ``.venv`` next to this file (set ``COURSE_VENV`` to use another folder). Running it
again reuses the environment and only installs what is missing. PyTorch is installed first,
at the version the course is tested with (``COURSE_TORCH_SPEC`` overrides, e.g. ``torch``),
because letting another package pull it in can choose a much larger build.

PyTorch goes in with pip, which honours the machine's pip configuration (a mirror, a folder
of wheels, a proxy). The other hundred-odd packages go in with uv, which downloads and
unpacks in parallel: about 15 s instead of pip's one to three minutes. pip installs uv
itself into the environment, at the version ``UV_VERSION`` pins. Wherever that or uv's
install fails (no route to PyPI but through pip's settings, say), bootstrap says so and
lets pip do it: the same result, only slower. ``COURSE_INSTALLER=pip`` skips uv altogether.
Neither compiles bytecode at install time (pip does it one file at a time: a minute for all
of PyTorch): Python compiles each module the first time it is imported and keeps the result
in the environment. JupyterLab and the tests run with ``PYTHONDONTWRITEBYTECODE`` unset, as
Docker's Python images set it, and then every kernel would compile PyTorch again.

JupyterLab opens on lesson 01 and bootstrap prints its address (with the login token) on
one line. As root (Docker, many cloud machines) JupyterLab refuses to start unless it is
given ``--allow-root``, so bootstrap adds it and says so.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
TORCH_SPEC = os.environ.get("COURSE_TORCH_SPEC", "torch==2.13.0")
USAGE = "usage: python3 bootstrap.py [lab [--dry-run] | test [extra pytest arguments]]"
FIRST_LESSON = "01_embeddings.ipynb"
# The line where JupyterLab (jupyter_server) prints the address with the login token.
LAB_URL = re.compile(r"https?://(?:localhost|127\.0\.0\.1)\S*token=\S+")


def say(message: str) -> None:
    print(f"[bootstrap] {message}", flush=True)


def fail(message: str) -> int:
    print(f"[bootstrap] error: {message}", file=sys.stderr, flush=True)
    return 1


def venv_python(env_dir: Path) -> Path:
    scripts = "Scripts" if os.name == "nt" else "bin"
    return env_dir / scripts / ("python.exe" if os.name == "nt" else "python")


def run(*command: str | Path) -> int:
    say("$ " + " ".join(str(c) for c in command))
    return subprocess.call([str(c) for c in command], cwd=ROOT)


def start_beside(*command: str | Path) -> subprocess.Popen:
    """Start ``command`` now and keep its output for :func:`finish` to print."""
    say("$ " + " ".join(str(c) for c in command) + "  (runs beside the tests; report below)")
    return subprocess.Popen(
        [str(c) for c in command],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(process: subprocess.Popen) -> int:
    """Wait for a command from :func:`start_beside`, print its output, return its status."""
    output, _ = process.communicate()
    say("$ " + " ".join(process.args) + "  (its report)")
    print(output, end="", flush=True)
    return process.returncode


UV_VERSION = "0.13.9"


def uv_for(python: Path) -> Path | None:
    """uv inside the environment, installed by pip if needed; None where it can't be had."""
    if os.environ.get("COURSE_INSTALLER", "").strip().lower() == "pip":
        return None
    uv = python.parent / ("uv.exe" if os.name == "nt" else "uv")
    if uv.exists():
        return uv
    quiet = ("--quiet", "--disable-pip-version-check")
    if run(python, "-m", "pip", "install", *quiet, "--no-compile", f"uv=={UV_VERSION}") == 0:
        return uv if uv.exists() else None
    say("could not install uv; pip installs the course instead (slower, same result)")
    return None


def install_course(python: Path, extra: str) -> int:
    """Install the course package with ``extra``: with uv where it works, else with pip."""
    uv = uv_for(python)
    target = f".[{extra}]"
    if uv is not None:
        if run(uv, "pip", "install", "--python", python, "--quiet", "-e", target) == 0:
            return 0
        say("uv could not install the course (see above); pip tries instead (slower)")
    return run(python, "-m", "pip", "install", "--no-compile", "-e", target)


def ensure_environment(extra: str) -> Path | None:
    """Create the virtual environment if needed and install torch, then the course package."""
    env_dir = Path(os.environ.get("COURSE_VENV", ROOT / ".venv"))
    python = venv_python(env_dir)
    if not python.exists():
        say(f"creating a virtual environment in {env_dir}")
        try:
            venv.EnvBuilder(with_pip=True).create(env_dir)
        except Exception as error:  # e.g. Debian without the python3-venv package
            fail(
                f"could not create a virtual environment ({error}). On Debian or Ubuntu install "
                "it with `sudo apt install python3-venv`, then run this command again."
            )
            return None
    has_torch = (
        subprocess.call(
            [str(python), "-c", "import torch"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        == 0
    )
    if not has_torch and run(python, "-m", "pip", "install", "--no-compile", TORCH_SPEC) != 0:
        fail(f"installing {TORCH_SPEC} failed; see pip's message above.")
        return None
    compiling = compile_torch_beside(python)
    installed = install_course(python, extra)
    compiling.wait()
    if installed != 0:
        fail("installing the course package failed; see the installer's message above.")
        return None
    return python


def compile_torch_beside(python: Path) -> subprocess.Popen:
    """Import PyTorch once in the background, so that Python compiles and keeps its modules.

    The installers compile nothing (see the top of this file). PyTorch is already in place
    while uv installs the rest, so its modules are compiled then, at no cost in time,
    instead of by every test process or kernel that imports it first at the same moment.
    """
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return subprocess.Popen(
        [str(python), "-c", COMPILE_TORCH],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


# Stops at once where PyTorch was compiled before (a second run), else imports it.
COMPILE_TORCH = """
import importlib.util, os, sys
if os.path.exists(importlib.util.cache_from_source(importlib.util.find_spec("torch").origin)):
    sys.exit()
import torch
torch.optim.AdamW([torch.zeros(1, requires_grad=True)])  # and torch._dynamo, which it imports
"""


def lab_command(python: str | Path, euid: int | None = None) -> list[str]:
    """The JupyterLab command: served from notebooks/, opening lesson 01; as root, allowed."""
    if euid is None:
        euid = os.geteuid() if hasattr(os, "geteuid") else -1
    command = [
        str(python),
        "-m",
        "jupyterlab",
        f"--ServerApp.root_dir={ROOT / 'notebooks'}",
        str(ROOT / "notebooks" / FIRST_LESSON),
    ]
    if euid == 0:
        command.append("--allow-root")
    return command


def open_lab(command: list[str]) -> int:
    """Run JupyterLab, passing its output through, and say once where to open it."""
    if "--allow-root" in command:
        say("running as root (a container?): JupyterLab needs --allow-root, so it is added")
    say("$ " + " ".join(command))
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    announced = False
    try:
        for line in process.stdout:
            print(line, end="", flush=True)
            found = LAB_URL.search(line)
            if found and not announced:
                url = found.group(0).replace("/lab?", f"/lab/tree/{FIRST_LESSON}?", 1)
                say(f"the course is open at {url} (Ctrl+C here to stop)")
                announced = True
        return process.wait()
    except KeyboardInterrupt:  # JupyterLab got the Ctrl+C too and shuts down
        return process.wait()


def main(argv: list[str]) -> int:
    if sys.version_info < (3, 10):  # noqa: UP036 (runs under whatever python3 a newcomer has)
        return fail(f"the course needs Python 3.10 or newer; this is {sys.version.split()[0]}.")
    command = argv[0] if argv else "lab"
    if command not in ("lab", "test") or (command == "lab" and argv[1:] not in ([], ["--dry-run"])):
        return fail(USAGE)
    if command == "test" and sys.version_info < (3, 11):
        return fail("the test suite needs Python 3.11 or newer (the course itself runs on 3.10).")
    python = ensure_environment("lab" if command == "lab" else "dev")
    if python is None:
        return 1
    # Keep the bytecode of each module once compiled (see the top of this file).
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    if command == "lab":
        if argv[1:] == ["--dry-run"]:
            print(" ".join(lab_command(python)))
            return 0
        return open_lab(lab_command(python))
    status = run(python, "-m", "ruff", "check", ".")
    status |= run(python, "-m", "ruff", "format", "--check", ".")
    # The type check takes one core for about 20 s; the tests spend much of their time
    # waiting on kernels and subprocesses, so it runs beside them.
    types = start_beside(python, "-m", "mypy")
    # Test processes share the work: a notebook or a test file goes whole to one of them,
    # the learner-notebook runs one by one, the costliest first (conftest.py). Idle OpenMP
    # threads must not spin while another process needs the core.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    parallel = ("-n", str(test_processes()), "--dist", "loadgroup")
    status |= run(python, "-m", "pytest", *parallel, *argv[1:])
    status |= finish(types)
    return status


def test_processes() -> int:
    """One test process per core, plus one, at most four.

    Many tests wait (for a kernel to start, a subprocess, a stand-in server), so one more
    process than cores keeps every core busy: 200 s instead of 231 s on two cores.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows
        cores = os.cpu_count() or 1
    return min(cores + 1, 4)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
