"""COURSE_QUICK switches the long lessons to smoke-test sizes."""

from __future__ import annotations

import pytest

from course_utils.settings import quick, sized


@pytest.mark.parametrize(
    ("value", "expected"), [("1", True), ("true", True), ("0", False), ("", False)]
)
def test_quick_reads_the_environment(monkeypatch, value, expected):
    monkeypatch.setenv("COURSE_QUICK", value)
    assert quick() is expected
    assert sized(100, 5) == (5 if expected else 100)
