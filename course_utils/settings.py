"""Course-wide settings read from the environment.

``COURSE_QUICK=1`` shrinks the long lessons (training in lessons 06 and 07) to a
smoke-test size. The test suite sets it so every notebook still runs end to end in CI;
learners and instructors never need it.
"""

from __future__ import annotations

import os
from typing import TypeVar

__all__ = ["quick", "sized"]

T = TypeVar("T")


def quick() -> bool:
    """True when ``COURSE_QUICK`` asks for smoke-test sizes."""
    return os.environ.get("COURSE_QUICK", "").strip().lower() in ("1", "true", "yes")


def sized(full: T, quick_value: T) -> T:
    """``full`` normally, ``quick_value`` under ``COURSE_QUICK=1``."""
    return quick_value if quick() else full
