"""A catalogue of learner implementations, written the way learners write them.

Each entry is a submission for one exercise: valid (it must pass) or wrong (it must be
rejected, and when ``names`` is given the verdict must contain those words, i.e. name the
mistake). The ``tests/test_catalogue_*.py`` modules fill it and test it;
``python tests/catalogue.py`` prints the figures per exercise and in total.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from course_utils.checking import CheckFailed
from course_utils.exercises import check


@dataclass(frozen=True)
class Entry:
    """One learner implementation: ``names`` is None for a valid one, else the words the
    verdict must contain ("" when only the rejection is asserted)."""

    exercise: str
    label: str
    submission: Any
    names: str | None


@dataclass
class Catalogue:
    """The entries of one test module, registered with :meth:`valid` and :meth:`wrong`."""

    entries: list[Entry] = field(default_factory=list)

    def valid(self, exercise: str) -> Callable[[Any], Any]:
        """Register a right implementation of ``exercise``."""
        return self._register(exercise, None)

    def wrong(self, exercise: str, names: str = "") -> Callable[[Any], Any]:
        """Register a wrong implementation whose verdict must contain ``names``."""
        return self._register(exercise, names)

    def add(self, exercise: str, label: str, submission: Any, names: str | None) -> None:
        """Register a submission that is not a named function or class (an instance, say)."""
        kind = "valid" if names is None else "wrong"
        self.entries.append(Entry(exercise, f"{exercise}-{kind}-{label}", submission, names))

    def _register(self, exercise: str, names: str | None) -> Callable[[Any], Any]:
        def register(submission: Any) -> Any:
            label = f"{exercise}-{'valid' if names is None else 'wrong'}-{submission.__name__}"
            self.entries.append(Entry(exercise, label, submission, names))
            return submission

        return register

    def of_kind(self, valid: bool) -> list[Entry]:
        """The valid entries, or the wrong ones."""
        return [e for e in self.entries if (e.names is None) == valid]


def verdict(exercise: str, submission: Any) -> tuple[bool, str]:
    """``(passed, sentence)``: the failure's sentence, or a crash's notes, or the pass line."""
    try:
        check(exercise, submission)
    except CheckFailed as failure:
        return False, str(failure)
    except Exception as error:  # a crash (or a stub): the notes name the call and any cause
        notes = " ".join(getattr(error, "__notes__", []))
        return False, f"{type(error).__name__}: {error} {notes}"
    return True, ""


def catalogue_tests(catalogue: Catalogue, minimum: dict[str, tuple[int, int]]) -> tuple:
    """The three tests of a catalogue module: valid ones pass, wrong ones are rejected with
    the named mistake, and every exercise has at least ``minimum[id] = (wrong, valid)``."""

    @pytest.mark.parametrize("entry", catalogue.of_kind(True), ids=lambda e: e.label)
    def test_valid_is_accepted(entry: Entry, capsys) -> None:
        passed, sentence = verdict(entry.exercise, entry.submission)
        assert passed, sentence
        assert capsys.readouterr().out.startswith(f"✓ {entry.exercise} ")

    @pytest.mark.parametrize("entry", catalogue.of_kind(False), ids=lambda e: e.label)
    def test_wrong_is_rejected_with_its_mistake_named(entry: Entry) -> None:
        passed, sentence = verdict(entry.exercise, entry.submission)
        assert not passed, f"{entry.label} was accepted"
        assert entry.names in sentence, sentence

    def test_catalogue_covers_each_exercise() -> None:
        for exercise, (wrong, valid) in minimum.items():
            entries = [e for e in catalogue.entries if e.exercise == exercise]
            wrongs = [e for e in entries if e.names is not None]
            assert len(wrongs) >= wrong and len(entries) - len(wrongs) >= valid, exercise
            named = [e for e in wrongs if e.names]
            assert len(named) >= 0.8 * len(wrongs), f"{exercise}: too few mistakes named"

    return (
        test_valid_is_accepted,
        test_wrong_is_rejected_with_its_mistake_named,
        test_catalogue_covers_each_exercise,
    )


def figures(catalogue: Catalogue) -> dict[str, dict[str, int]]:
    """Per exercise: valid, accepted, wrong, rejected, named (the verdict names the mistake)."""
    table: dict[str, dict[str, int]] = {}
    for entry in catalogue.entries:
        row = table.setdefault(
            entry.exercise, dict(valid=0, accepted=0, wrong=0, rejected=0, named=0)
        )
        with contextlib.redirect_stdout(io.StringIO()):  # the checks' own "✓" lines
            passed, sentence = verdict(entry.exercise, entry.submission)
        if entry.names is None:
            row["valid"] += 1
            row["accepted"] += passed
        else:
            row["wrong"] += 1
            row["rejected"] += not passed
            row["named"] += (not passed) and bool(entry.names) and entry.names in sentence
    return table


def main() -> None:
    """Print the catalogue's figures for every ``test_catalogue_*`` module."""
    sys.path.insert(0, str(Path(__file__).parent))
    total = dict(valid=0, accepted=0, wrong=0, rejected=0, named=0)
    print("exercise  valid accepted  wrong rejected named")
    for path in sorted(Path(__file__).parent.glob("test_catalogue_*.py")):
        module = importlib.import_module(path.stem)
        if not hasattr(getattr(module, "CATALOGUE", None), "entries"):
            continue  # a catalogue kept another way (another lesson's own format)
        for exercise, row in sorted(figures(module.CATALOGUE).items()):
            print(
                f"{exercise:8}  {row['valid']:5} {row['accepted']:8}  {row['wrong']:5} "
                f"{row['rejected']:8} {row['named']:5}"
            )
            for key in total:
                total[key] += row[key]
    print(
        f"{'total':8}  {total['valid']:5} {total['accepted']:8}  {total['wrong']:5} "
        f"{total['rejected']:8} {total['named']:5}  "
        f"({total['rejected'] / total['wrong']:.1%} rejected, "
        f"{total['named'] / total['wrong']:.1%} named)"
    )


if __name__ == "__main__":
    main()
