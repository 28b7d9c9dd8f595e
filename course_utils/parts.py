"""The record of the learner's parts: what you wrote and passed is what later lessons use.

When ``check(exercise_id, obj)`` passes for one of the exercises below, ``obj`` (your
function or class) is kept in the course cache. Later notebooks, even after a kernel
restart or in another notebook, get it back with :func:`get`, or assembled with
:func:`encoder_block`, :func:`positional_encoding` and :func:`pooling`. A part you have not
passed is replaced by the course's reference, and :func:`show` says which is which::

    from course_utils import parts
    parts.show()                      # one table: every part, yours or the reference, and why
    MultiHeadAttention = parts.get("multi_head_attention").impl
    block = parts.encoder_block(64, 4, 256, norm_first=True)

=========================  ========  =====================================================
part                       exercise  what it is
=========================  ========  =====================================================
``attention``              2.1       ``scaled_dot_product_attention(query, key, value, mask)``
``multi_head_attention``   3.3       ``MultiHeadAttention(d_model, num_heads, dropout)`` class
``layer_norm``             4.1       ``layer_norm(x, weight, bias, eps)``
``feed_forward``           4.2       ``FeedForward(d_model, d_ff, dropout, activation)`` class
``encoder_block``          4.3       ``EncoderBlock(d_model, num_heads, d_ff, ...)`` class
``positional_encoding``    5.1       ``sinusoidal_positional_encoding(max_len, d_model)``
``add_positional_encoding`` 5.2      ``add_positional_encoding(x, table)``
``pooling``                6.1       ``masked_mean_pool(hidden, mask)``
=========================  ========  =====================================================

In the notebook where a check passed, :func:`get` returns the very object you passed;
after a restart, or in another notebook, the recorded copy. :func:`yours_or_reference`
serves the demos that follow any exercise (kept part or not): your code once its check has
passed, else the course's, saying so in one line.

**How a part is kept.** Each part is serialised *by value* with ``cloudpickle``: the
function's or class's code, and every global it uses that was defined in the notebook
(your helpers, an earlier class of yours), travel with it, while imported modules (torch,
``course_utils``) are kept by name and imported again on loading. We chose this over saving
the cell's source because a source needs the notebook's state around it to run (its
imports, the helpers of earlier cells, a class renamed later) and we would have to guess
which cells to replay; cloudpickle captures exactly the objects the code refers to, at the
moment it passed. The price: a record is tied to the Python minor version that wrote it,
so a record made under another Python is reported as "could not be loaded" and the
reference is used instead.

**When a later check changes the record.** The latest check of an exercise decides:

* it passes: your new version replaces the old one;
* it fails, or your code crashes inside the check: the old "yours" record is dropped
  (status "check failed"), because the code in your notebook is no longer the code that
  passed, and keeping the old one would silently train a model on code you have since
  changed;
* it hits an untouched stub (``NotImplementedError``): an earlier passing version is kept,
  since a stub means this copy of the notebook was never filled in (a fresh copy opened
  from the course's link), not that you changed your mind.

**Where the record lives.** In ``parts/`` inside the course cache (see
:func:`course_utils.download.cache_dir`), or in ``COURSE_PARTS_DIR`` when set. **In Colab**
that cache disappears when the session ends: run :func:`keep_on_google_drive` at the top of
each notebook to keep the record in your Google Drive instead.

``COURSE_PARTS=reference`` makes every part the reference (the test suite uses it).
"""

from __future__ import annotations

import datetime
import inspect
import os
import pickle
import sys
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from course_utils.cache import atomic_write
from course_utils.download import cache_dir

__all__ = [
    "PARTS",
    "Part",
    "broken",
    "culprit",
    "encoder_block",
    "forget",
    "get",
    "keep_on_google_drive",
    "pooling",
    "positional_encoding",
    "provenance",
    "record_check",
    "records_dir",
    "show",
    "yours_or_reference",
]

# part name -> the exercise whose passing check records it (the order of the course).
PARTS: dict[str, str] = {
    "attention": "2.1",
    "multi_head_attention": "3.3",
    "layer_norm": "4.1",
    "feed_forward": "4.2",
    "encoder_block": "4.3",
    "positional_encoding": "5.1",
    "add_positional_encoding": "5.2",
    "pooling": "6.1",
}
_PART_OF_EXERCISE = {exercise: name for name, exercise in PARTS.items()}
_FORMAT = 1
_DRIVE_FOLDER = "/content/drive/MyDrive/transformers-from-scratch/parts"

Origin = Literal["yours", "reference"]


@dataclass(frozen=True)
class Part:
    """One part as a later lesson gets it: the implementation, whose it is, and why."""

    name: str
    impl: Any
    origin: Origin
    reason: str = ""  # why the reference is used ("" for yours)
    exercise: str = ""
    passed_at: str = ""  # when your version passed its check ("" for the reference)


def records_dir() -> Path:
    """The folder holding one record file per part (``COURSE_PARTS_DIR`` or the cache's)."""
    chosen = os.environ.get("COURSE_PARTS_DIR")
    return Path(chosen).expanduser() if chosen else cache_dir() / "parts"


def _record_path(name: str) -> Path:
    return records_dir() / f"{name}.pkl"


def _reference(name: str) -> Any:
    # Imported here: the exercise registry imports this module (for the check hook).
    from course_utils.exercises import EXERCISES

    return EXERCISES[PARTS[name]].reference


def _check_name(name: str) -> None:
    if name not in PARTS:
        raise ValueError(f"no part {name!r}; the parts are {', '.join(PARTS)}")


def _now() -> str:
    return datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M")


def _write(name: str, record: dict) -> None:
    with atomic_write(_record_path(name)) as temporary:
        temporary.write_bytes(pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL))


def _read(name: str) -> dict | None:
    """The raw record of ``name`` (metadata plus the pickled payload), or None if there is none.

    Raises ``ValueError`` when the file exists but is not a record (truncated, corrupt).
    """
    path = _record_path(name)
    if not path.is_file():
        return None
    try:
        record = pickle.loads(path.read_bytes())
    except Exception as error:  # any unpickling failure means the file is damaged
        raise ValueError(f"{path} is damaged ({type(error).__name__})") from None
    if not isinstance(record, dict) or record.get("format") != _FORMAT:
        raise ValueError(f"{path} is not a record this version of the course can read")
    return record


def record_check(exercise_id: str, submission: Any, outcome: str) -> None:
    """Update the record after ``check(exercise_id, submission)``; ``outcome`` says how it ended.

    ``outcome`` is ``"passed"``, ``"failed"`` (wrong answer or a crash in learner code) or
    ``"stub"``. Never raises: a record that cannot be written costs one line of notice,
    never the learner's check. Exercises that are not parts are ignored.
    """
    if outcome == "passed":
        _passed_now[exercise_id] = submission
    else:
        _passed_now.pop(exercise_id, None)
    name = _PART_OF_EXERCISE.get(exercise_id)
    if name is None:
        return
    try:
        if outcome == "passed":
            import cloudpickle  # (it ships no type hints)

            payload = cloudpickle.dumps(submission, protocol=pickle.DEFAULT_PROTOCOL)
            record = {"status": "passed", "passed_at": _now(), "payload": payload}
        elif outcome == "stub":
            try:
                earlier = _read(name)
            except ValueError:
                earlier = None
            if earlier is not None and earlier.get("status") == "passed":
                _loaded.pop(name, None)
                return  # keep the version that passed (see the module docstring)
            record = {"status": "stub"}
        elif outcome == "failed":
            record = {"status": "failed"}
        else:
            raise ValueError(f"outcome must be passed, failed or stub; got {outcome!r}")
        record.update(format=_FORMAT, part=name, exercise=exercise_id, python=sys.version_info[:2])
        _write(name, record)
        _loaded.pop(name, None)
        if outcome == "passed":
            # In this session, later cells get the very object that passed (a closure's state
            # and all); after a restart, or in another notebook, its recorded copy.
            _loaded[name] = Part(name, submission, "yours", "", exercise_id, record["passed_at"])
            _remember_code(name, submission)
    except Exception as error:  # the check's verdict must reach the learner whatever happens
        print(
            f"(note: your {name} could not be kept for later lessons, only this notebook "
            f"uses it: {type(error).__name__}: {_first_line(error)})"
        )
        if outcome == "passed":
            _loaded[name] = Part(name, submission, "yours", "", exercise_id, _now())


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else ""


def forget(name: str) -> None:
    """Drop your recorded ``name``: later lessons use the reference for it."""
    _check_name(name)
    _record_path(name).unlink(missing_ok=True)
    _loaded.pop(name, None)


# Loaded parts of this session, so a part is unpickled (and its notice printed) once.
_loaded: dict[str, Part] = {}
# Every exercise's submission that passed its check in this session (parts or not).
_passed_now: dict[str, Any] = {}


def yours_or_reference(exercise_id: str, obj: Any) -> Any:
    """``obj`` if it passed ``check(exercise_id, obj)`` in this session, else the reference.

    For the demos that follow an exercise: they run on your code once its check has
    passed, and otherwise say in one line that the course's version stands in for it.
    """
    from course_utils.exercises import EXERCISES

    if exercise_id not in EXERCISES:
        raise ValueError(f"no exercise {exercise_id!r}")
    if _passed_now.get(exercise_id) is obj:
        return obj
    exercise = EXERCISES[exercise_id]
    print(
        f"(exercise {exercise_id} has not passed its check yet: the course's {exercise.name} "
        "stands in for yours here)"
    )
    return exercise.reference


_code_of: dict[types.CodeType, str] = {}


def get(name: str) -> Part:
    """Your ``name`` if its check passed and it loads; otherwise the reference, with the reason."""
    _check_name(name)
    if os.environ.get("COURSE_PARTS", "").strip().lower() == "reference":
        return _fallback(name, "COURSE_PARTS=reference")
    if name in _loaded:
        return _loaded[name]
    part = _load(name)
    _loaded[name] = part
    return part


def recorded(name: str) -> bool:
    """True when the learner's ``name`` is on record, passed its check, and loads."""
    _check_name(name)
    return _load(name).origin == "yours"


def _fallback(name: str, reason: str) -> Part:
    return Part(name, _reference(name), "reference", reason, PARTS[name])


def _load(name: str) -> Part:
    try:
        record = _read(name)
    except ValueError as error:
        _notice(name, f"{error}")
        return _fallback(name, "could not be loaded")
    if record is None:
        return _fallback(name, "not attempted")
    status = record.get("status")
    if status == "stub":
        return _fallback(name, "stub")
    if status == "failed":
        return _fallback(name, "check failed")
    if status == "broken":
        return _fallback(name, f"broke when used ({record.get('error', '')})")
    written_by = tuple(record.get("python", ()))
    if written_by != tuple(sys.version_info[:2]):  # code objects differ between versions
        version = ".".join(map(str, written_by)) or "an unknown version"
        _notice(name, f"it was recorded under Python {version}")
        return _fallback(name, "could not be loaded")
    try:
        impl = pickle.loads(record["payload"])
    except Exception as error:  # a missing module, another Python version, a damaged payload
        _notice(name, f"{type(error).__name__}: {_first_line(error)}")
        return _fallback(name, "could not be loaded")
    reference = _reference(name)
    if isinstance(reference, type) != isinstance(impl, type) or not callable(impl):
        _notice(name, f"the record holds a {type(impl).__name__}, not a function or class")
        return _fallback(name, "could not be loaded")
    _remember_code(name, impl)
    return Part(name, impl, "yours", "", PARTS[name], record.get("passed_at", ""))


def _notice(name: str, why: str) -> None:
    print(
        f"Note: your recorded {name} (exercise {PARTS[name]}) could not be loaded ({why}); "
        f"the reference is used instead. Pass check({PARTS[name]!r}, ...) again to record it anew."
    )


def _remember_code(name: str, impl: Any) -> None:
    """Note the code objects of a loaded part, so :func:`culprit` can find it in a traceback."""
    functions = [impl] if not isinstance(impl, type) else list(vars(impl).values())
    for function in functions:
        code = getattr(inspect.unwrap(function), "__code__", None) if callable(function) else None
        if code is not None:
            _code_of[code] = name


def culprit(error: BaseException) -> str | None:
    """The name of the learner's part whose code raised ``error`` (innermost first), or None."""
    found = None
    traceback = error.__traceback__
    while traceback is not None:
        found = _code_of.get(traceback.tb_frame.f_code, found)
        traceback = traceback.tb_next
    return found


def broken(name: str, error: BaseException | str) -> str:
    """Mark your ``name`` as broken in use and return one line naming it and the fallback.

    From then on :func:`get` gives the reference for ``name`` (also after a restart), until
    its exercise passes its check again.
    """
    _check_name(name)
    why = error if isinstance(error, str) else f"{type(error).__name__}: {_first_line(error)}"
    record = {
        "format": _FORMAT,
        "part": name,
        "exercise": PARTS[name],
        "status": "broken",
        "error": why[:200],
    }
    try:
        _write(name, record)
    finally:
        _loaded.pop(name, None)
    return (
        f"Your {name} (exercise {PARTS[name]}) passed its check but broke here ({why}); "
        f"the reference {name} is used from now on: run this cell again, or fix exercise "
        f"{PARTS[name]} and pass its check to use yours."
    )


def provenance(names: Iterable[str] = tuple(PARTS)) -> list[tuple[str, str, str]]:
    """``(name, origin, passed_at)`` of each part: whose code a model built now would run.

    A model trained and cached from these parts is keyed by it, so passing a check again
    (new code) or falling back to the reference trains anew instead of loading weights
    trained through other code.
    """
    return [(name, part.origin, part.passed_at) for name in names for part in [get(name)]]


def show() -> None:
    """Print one table: every part, yours (with when it passed) or the reference, and why."""
    rows = [("part", "exercise", "used", "passed at", "reason")]
    for name in PARTS:
        part = get(name)
        rows.append((name, part.exercise, part.origin, part.passed_at or "-", part.reason or "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for i, row in enumerate(rows):
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
        if i == 0:
            print("  ".join("-" * width for width in widths))
    if _in_colab() and not str(records_dir()).startswith("/content/drive"):
        print(
            "In Colab this record is lost when the session ends: run "
            "parts.keep_on_google_drive() to keep it in your Google Drive."
        )


def _in_colab() -> bool:
    return "google.colab" in sys.modules


def keep_on_google_drive(folder: str = _DRIVE_FOLDER) -> Path | None:
    """In Colab, mount Google Drive and keep the record there; elsewhere do nothing.

    Colab deletes its files when the session ends, the record with them; in your Drive it
    survives, and every later notebook that calls this finds it again. Returns the folder
    (None outside Colab, where the record already lives in :func:`records_dir`).
    """
    if not _in_colab():
        return None
    from google.colab import drive  # Colab only

    try:
        drive.mount("/content/drive")  # Colab asks you to allow access
    except Exception as error:  # declined or unavailable: the lesson goes on without Drive
        print(
            f"Google Drive was not mounted ({_first_line(error)}): your parts are kept for "
            "this session only."
        )
        return None
    os.environ["COURSE_PARTS_DIR"] = folder
    Path(folder).mkdir(parents=True, exist_ok=True)
    _loaded.clear()
    print(f"Your parts are kept in {folder}, in your Google Drive.")
    return Path(folder)


def encoder_block(
    d_model: int,
    num_heads: int,
    d_ff: int,
    *,
    dropout: float = 0.0,
    activation: str = "relu",
    norm_first: bool = False,
    eps: float = 1e-5,
) -> nn.Module:
    """An encoder block built from your parts, each missing one replaced by the reference.

    Your ``EncoderBlock`` (4.3) when it passed, built from the parts it was written with;
    otherwise the reference block assembled from your multi-head attention (3.3, or the
    reference one using your attention function, 2.1), your feed-forward (4.2) and your
    layer norm (4.1), wherever you have them. ``forward(x, mask=None)``: ``x`` is
    ``(batch, seq, d_model)``; ``mask`` is bool, True = may attend, broadcastable to
    ``(batch, num_heads, seq_q, seq_k)``.
    """
    from course_utils.encoder import EncoderBlock

    settings: dict[str, Any] = {
        "dropout": dropout,
        "activation": activation,
        "norm_first": norm_first,
        "eps": eps,
    }
    block = get("encoder_block")
    if block.origin == "yours":
        return block.impl(d_model, num_heads, d_ff, **settings)
    return EncoderBlock(
        d_model,
        num_heads,
        d_ff,
        **settings,
        attention=_attention_factory(),
        feed_forward=get("feed_forward").impl,
        layer_norm=get("layer_norm").impl,
    )


def _attention_factory() -> Callable[..., nn.Module]:
    """Your multi-head attention class, or the reference one around your attention function."""
    from course_utils.attention import MultiHeadAttention

    mine = get("multi_head_attention")
    if mine.origin == "yours":
        return mine.impl
    function = get("attention").impl

    def reference_heads(d_model: int, num_heads: int, dropout: float = 0.0) -> nn.Module:
        return MultiHeadAttention(d_model, num_heads, dropout, attention=function)

    return reference_heads


def positional_encoding(max_len: int, d_model: int) -> torch.Tensor:
    """The ``(max_len, d_model)`` sinusoidal table from your 5.1 function (or the reference)."""
    return get("positional_encoding").impl(max_len, d_model)


def pooling() -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Your masked mean pooling (6.1) or the reference: ``(hidden, mask) -> (batch, d_model)``."""
    return get("pooling").impl
