"""Print every library of pyproject.toml pinned at its lower bound (tools at their pins).

torch is pinned to COURSE_TORCH_VERSION (default 2.13.0, the build this machine has).
Used by .ci/lower-bounds.
"""

from __future__ import annotations

import os
from pathlib import Path

import tomllib
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent

project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
texts = list(project["dependencies"])
for extra in project["optional-dependencies"].values():
    texts += [t for t in extra if not t.startswith(project["name"])]
pins = {}
for text in texts:
    requirement = Requirement(text)
    name = requirement.name.lower()
    lowest = [s.version for s in requirement.specifier if s.operator in (">=", "==")]
    if name == "torch":
        lowest = [os.environ.get("COURSE_TORCH_VERSION", "2.13.0")]
    if not lowest:
        raise SystemExit(f"{text}: no lower bound to test")
    pins[name] = f"{requirement.name}=={lowest[0]}"
print("\n".join(sorted(pins.values())))
