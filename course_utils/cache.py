"""Writing into the course cache safely, and naming what is cached.

Everything the course saves (downloads, tokenizers, trained models, the record of the
learner's parts) goes through :func:`atomic_write`, so an interrupted run never leaves a
half-written file or folder where a finished one is expected, and is named with
:func:`cache_key`, so a change of settings or data never reuses a stale result.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["atomic_write", "cache_key"]


@contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; it replaces ``path`` only if the block succeeds.

    Write a file or a whole folder at the yielded path. On success it is renamed to ``path``
    (an existing file or folder there is replaced); on any error it is deleted and ``path``
    is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.part")
    _remove(temporary)
    try:
        yield temporary
        if not temporary.exists():
            raise FileNotFoundError(f"nothing was written to {temporary} for {path}")
        if temporary.is_dir() and path.is_dir():
            _remove(path)  # os.replace cannot replace a folder that has files in it
        os.replace(temporary, path)
    finally:
        _remove(temporary)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def cache_key(*values: Any, length: int = 16) -> str:
    """A short, stable hex digest of ``values`` (anything JSON can write, in order).

    The same values give the same key in every process and on every machine; dictionaries
    are hashed with sorted keys, and strings are hashed exactly as given.
    """
    digest = hashlib.sha256()
    for value in values:
        digest.update(json.dumps(value, sort_keys=True, separators=(",", ":")).encode())
        digest.update(b"\0")
    return digest.hexdigest()[:length]
