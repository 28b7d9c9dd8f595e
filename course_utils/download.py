"""Safe downloads into the course cache: verified, atomic, and quick to fail offline.

The rules every loader in :mod:`course_utils.data` relies on:

* a download goes to a temporary file next to its destination (:func:`atomic_write`) and
  is moved into place only after its size and SHA-256 have been checked, so an
  interrupted or corrupted download never leaves a file in the cache;
* a cached file is checked again whenever it is used, and a mismatch raises
  :class:`CorruptFileError` naming the file and telling you to delete it;
* without a network the first failed connection ends the attempt (a short timeout,
  no retries), and the loader raises one :class:`DataUnavailable` message that says
  what was tried and exactly which file to put where.

Set ``COURSE_OFFLINE=1`` to skip every network attempt, and ``COURSE_DOWNLOAD_TIMEOUT``
(seconds, default 10) to change how long a silent connection is waited for. Proxies
come from the usual ``HTTPS_PROXY``, ``HTTP_PROXY`` and ``NO_PROXY`` variables.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.client
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

from course_utils.cache import atomic_write

__all__ = [
    "CorruptFileError",
    "DataUnavailable",
    "cache_dir",
    "describe_error",
    "download",
    "env_file",
    "file_sha256",
    "hub_timeouts",
    "hub_unreachable",
    "offline",
    "recorded_sha256",
    "timeout_seconds",
    "unavailable",
    "verify_file",
    "write_with_checksum",
]

PACKAGE_DIR = Path(__file__).resolve().parent

CHUNK_BYTES = 1 << 16
PROGRESS_BAR_BYTES = 1 << 20  # show a progress bar for downloads of 1 MiB or more


class DataUnavailable(FileNotFoundError):
    """Data could not be found locally nor downloaded; the message says where to put it."""


class CorruptFileError(ValueError):
    """A file's size or checksum is not what it should be; the message names the file."""


def offline() -> bool:
    """True when ``COURSE_OFFLINE`` or ``HF_HUB_OFFLINE`` is set (to 1, true, yes or on)."""
    return any(
        os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}
        for name in ("COURSE_OFFLINE", "HF_HUB_OFFLINE")
    )


def timeout_seconds() -> float:
    """How long to wait for a silent connection: ``COURSE_DOWNLOAD_TIMEOUT`` or 10 seconds."""
    text = os.environ.get("COURSE_DOWNLOAD_TIMEOUT", "10")
    try:
        value = float(text)
    except ValueError:
        raise ValueError(
            f"COURSE_DOWNLOAD_TIMEOUT must be a number of seconds, got {text!r}"
        ) from None
    if value <= 0:
        raise ValueError(f"COURSE_DOWNLOAD_TIMEOUT must be positive, got {value}")
    return value


def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of a file's bytes, as 64 hex digits."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_file(
    path: str | os.PathLike, *, sha256: str | None = None, size: int | None = None
) -> Path:
    """Check a file's size and SHA-256 (each when given); return its path or raise.

    Raises :class:`CorruptFileError` naming the file and telling how to recover.
    """
    path = Path(path)
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        problem = f"has {actual_size:,} bytes instead of {size:,}"
    elif sha256 is not None and file_sha256(path) != sha256.lower():
        problem = f"does not match its SHA-256 checksum (expected {sha256})"
    else:
        return path
    raise CorruptFileError(
        f"{path} {problem}: it is incomplete or corrupted. Delete it and run again to "
        "download a fresh copy (or put a good copy at that path)."
    )


def write_with_checksum(destination: Path, write: Callable[[Path], object]) -> Path:
    """Create a file atomically with ``write(temporary_path)``, recording its SHA-256 beside it.

    For files the course derives itself (a sample of a data set), which have no published
    checksum: ``destination.sha256`` lets :func:`recorded_sha256` catch later corruption.
    """
    sidecar = destination.with_name(destination.name + ".sha256")
    with atomic_write(destination) as temporary:
        write(temporary)
        with atomic_write(sidecar) as sidecar_temporary:
            sidecar_temporary.write_text(file_sha256(temporary) + "\n")
    return destination


def recorded_sha256(path: Path) -> str:
    """The checksum :func:`write_with_checksum` recorded for ``path``; raise if it is missing."""
    sidecar = path.with_name(path.name + ".sha256")
    if not sidecar.is_file():
        raise CorruptFileError(f"{path} has no checksum file next to it; delete it and run again.")
    return sidecar.read_text().strip()


def cache_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The course's cache folder, created if needed.

    Resolved from ``data_dir``, then ``COURSE_DATA_DIR``, then the repository's
    ``data/`` folder when the package sits in a checkout (an editable install), and
    otherwise (a regular install, as in Colab) ``$XDG_CACHE_HOME/transformers-from-scratch``,
    which is ``~/.cache/transformers-from-scratch`` by default.
    """
    chosen = data_dir or os.environ.get("COURSE_DATA_DIR")
    if chosen:
        path = Path(chosen).expanduser()
    elif (PACKAGE_DIR.parent / "pyproject.toml").is_file():
        path = PACKAGE_DIR.parent / "data"
    else:
        user_cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        path = Path(user_cache) / "transformers-from-scratch"
    path.mkdir(parents=True, exist_ok=True)
    return path


def unavailable(what: str, tried: list[str], fix: str) -> DataUnavailable:
    """The one error a loader raises when everything failed: what was tried, then the fix."""
    steps = "\n".join(f"  {number}. {step}" for number, step in enumerate(tried, 1))
    return DataUnavailable(f"Could not load {what}. Tried, in order:\n{steps}\nTo fix this, {fix}")


def env_file(variable: str, what: str) -> Path | None:
    """The file an environment variable names, or None if unset; a missing file is an error."""
    value = os.environ.get(variable)
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.is_file():
        raise DataUnavailable(
            f"Could not load {what}: {variable} is set to {value!r}, but there is no file there. "
            f"Fix the path, or unset {variable} to use the cache and the download."
        )
    return path


def hub_unreachable() -> str | None:
    """None if the Hugging Face hub answers within the timeout, else the reason it did not.

    Asked through ``huggingface_hub``'s own HTTP client, so ``HF_ENDPOINT``, ``HTTPS_PROXY``
    and ``NO_PROXY`` count exactly as they will for the download; one try, no retries.
    """
    from huggingface_hub import constants, get_session

    try:
        response = get_session().head(constants.ENDPOINT, timeout=timeout_seconds())
    except Exception as error:  # httpx raises its own kinds (ConnectError, ProxyError ...)
        return f"{constants.ENDPOINT} unreachable ({describe_error(error)})"
    if response.status_code >= 500:  # a proxy that cannot reach the hub answers 502 or 503
        return f"{constants.ENDPOINT} answered HTTP {response.status_code}"
    return None


# huggingface_hub retries a failed request five times (about 24 s of back-off on top of
# six timeouts); these keyword defaults are set to 0 while the course calls the hub.
_HUB_RETRY_DEFAULTS = (
    ("huggingface_hub.utils._http", "http_backoff", "max_retries"),
    ("huggingface_hub.utils._http", "http_stream_backoff", "max_retries"),
    ("huggingface_hub.file_download", "http_get", "_nb_retries"),
)


@contextlib.contextmanager
def hub_timeouts() -> Iterator[None]:
    """While calling the hub: the course's timeout on every request, and no retries."""
    import importlib

    from huggingface_hub import constants, get_session

    restore: list[Callable[[], object]] = []
    for name in ("HF_HUB_ETAG_TIMEOUT", "HF_HUB_DOWNLOAD_TIMEOUT"):
        if hasattr(constants, name):
            restore.append(functools.partial(setattr, constants, name, getattr(constants, name)))
            setattr(constants, name, timeout_seconds())
    # The shared client's own default covers the requests that pass no timeout at all.
    session = get_session()
    restore.append(
        functools.partial(setattr, session, "timeout", getattr(session, "timeout", None))
    )
    session.timeout = timeout_seconds()
    for module_name, function_name, keyword in _HUB_RETRY_DEFAULTS:
        function = getattr(importlib.import_module(module_name), function_name, None)
        defaults = getattr(function, "__kwdefaults__", None) or {}
        if keyword in defaults:  # other versions of huggingface_hub: leave them as they are
            restore.append(functools.partial(defaults.__setitem__, keyword, defaults[keyword]))
            defaults[keyword] = 0
    try:
        yield
    finally:
        for undo in reversed(restore):
            undo()


def _urlopen(url: str, timeout: float):
    """Open ``url``; the one place the network is touched (tests replace it)."""
    request = urllib.request.Request(url, headers={"User-Agent": "transformers-from-scratch"})
    # A fresh opener reads HTTPS_PROXY, HTTP_PROXY and NO_PROXY now, whatever opener another
    # library may have installed globally.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler())
    return opener.open(request, timeout=timeout)


def _progress_bar(total: int | None, description: str):
    if total is not None and total < PROGRESS_BAR_BYTES:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=description)


def download(
    url: str,
    destination: str | os.PathLike,
    *,
    sha256: str | None = None,
    size: int | None = None,
    description: str | None = None,
) -> Path:
    """Download ``url`` to ``destination`` atomically and verify it; return the path.

    The bytes go to a temporary file in the destination's folder, which is checked
    (``size`` and ``sha256`` when given) and then renamed into place; on any failure
    the temporary file is removed and nothing is left at ``destination``. Network
    failures raise ``OSError`` (``urllib.error.URLError``, ``TimeoutError`` ...) with
    the reason; a bad size or checksum raises :class:`CorruptFileError`.
    """
    if offline():
        raise urllib.error.URLError("offline mode (COURSE_OFFLINE or HF_HUB_OFFLINE is set)")
    destination = Path(destination)
    with atomic_write(destination) as temporary:
        with open(temporary, "wb") as out, _urlopen(url, timeout_seconds()) as response:
            length = response.headers.get("Content-Length") if response.headers else None
            total = int(length) if length else size
            bar = _progress_bar(total, description or destination.name)
            try:
                for chunk in iter(lambda: response.read(CHUNK_BYTES), b""):
                    out.write(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
            except http.client.HTTPException as error:  # IncompleteRead is no OSError
                raise ConnectionError(
                    f"the connection broke off before the whole file arrived ({error!r})"
                ) from error
            finally:
                if bar is not None:
                    bar.close()
        try:
            verify_file(temporary, sha256=sha256, size=size)
        except CorruptFileError:
            raise CorruptFileError(
                f"the file downloaded from {url} has the wrong size or checksum, so it was "
                "not saved; the source may have changed or the connection was cut."
            ) from None
    return destination


def describe_error(error: BaseException) -> str:
    """A short reason for a failed download, for the one-message offline failure."""
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    reason = getattr(error, "reason", None)
    text = " ".join(str(reason if reason is not None else error).split())  # one line
    return f"{type(error).__name__}: {text or 'no details'}"
