"""The online paths, offline: the real download code, ``datasets`` and ``transformers``
against local stand-ins of the Hugging Face hub and of GitHub's raw files, from empty caches.

Each fault (truncated body, wrong checksum, 404, a server that hangs, an unreachable
host, a proxy) must leave nothing in the course cache, end within the configured
timeout (plus the time to import the libraries, for the hub), and raise one
:class:`~course_utils.download.DataUnavailable` message that says what to do.
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

from course_utils import data
from course_utils.download import DataUnavailable
from tests.standins import fixtures
from tests.standins.servers import (
    FileServer,
    HubServer,
    Proxy,
    repo_files,
    self_signed_certificate,
)

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 1.0  # COURSE_DOWNLOAD_TIMEOUT for the plain-URL tests
HUB_TIMEOUT = 2.0  # and for the hub, whose libraries are slower to give up
SLACK = 5.0  # what a loaded machine adds to a timeout before the message is out
HUB_IMPORT_SECONDS = 30.0  # importing datasets or transformers the first time, loaded machine
MODEL = "course-tests/tiny-bert"


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def course(monkeypatch, tmp_path):
    """An empty course cache, no local data, no proxy, a short timeout; returns the cache."""
    import nltk

    for name in (
        "NLTK_DATA",
        "COURSE_CROWS_PAIRS",
        "COURSE_OFFLINE",
        "HF_HUB_OFFLINE",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "http_proxy",
        "https_proxy",
        "NO_PROXY",
        "no_proxy",
        "SSL_CERT_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("COURSE_DOWNLOAD_TIMEOUT", str(TIMEOUT))
    monkeypatch.setattr(nltk.data, "path", [])
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def crows_bytes(tmp_path_factory) -> bytes:
    return fixtures.write_crows_pairs_csv(tmp_path_factory.mktemp("crows") / "c.csv").read_bytes()


@pytest.fixture(scope="module")
def brown_bytes(tmp_path_factory) -> bytes:
    return fixtures.write_brown_zip(tmp_path_factory.mktemp("brown") / "brown.zip").read_bytes()


def _pin(monkeypatch, source: str, content: bytes) -> None:
    """Make the stand-in's file the one the loader's checksum expects."""
    from hashlib import sha256

    prefix = {"crows": "CROWS_PAIRS", "brown": "BROWN"}[source]
    monkeypatch.setattr(data, f"{prefix}_SHA256", sha256(content).hexdigest())
    monkeypatch.setattr(data, f"{prefix}_BYTES", len(content))


def _load(source: str):
    if source == "crows":
        return data.load_crows_pairs()
    return data.brown_sentences()


def _target(source: str, cache: Path) -> Path:
    if source == "crows":
        return cache / "crows_pairs" / "crows_pairs_anonymized.csv"
    return cache / "nltk_data" / "corpora" / "brown.zip"


SOURCES = ["crows", "brown"]
URL_VARIABLE = {"crows": "COURSE_CROWS_PAIRS_URL", "brown": "COURSE_BROWN_URL"}


@pytest.mark.parametrize("source", SOURCES)
def test_plain_url_download_through_the_real_code_then_offline(
    source, course, monkeypatch, crows_bytes, brown_bytes
):
    content = crows_bytes if source == "crows" else brown_bytes
    _pin(monkeypatch, source, content)
    with FileServer({"/file": content}) as server:
        monkeypatch.setenv(URL_VARIABLE[source], server.url + "/file")
        first = _load(source)
        assert server.requests == [("GET", "/file")]
    assert _target(source, course).read_bytes() == content
    second = _load(source)  # the server is gone: from the cache
    assert len(second) == len(first) > 0


FAULTS = {
    # fault name: (server options, what the message must name)
    "truncated": ({"fault": "truncated"}, "wrong size or checksum"),
    "wrong checksum": ({}, "wrong size or checksum"),
    "404": ({"fault": "404"}, "HTTP 404 Not Found"),
    "hang": ({"fault": "hang"}, "timed out"),
}


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("source", SOURCES)
def test_plain_url_fault_fails_fast_with_the_fix_and_caches_nothing(
    source, fault, course, monkeypatch, crows_bytes, brown_bytes, capfd
):
    content = crows_bytes if source == "crows" else brown_bytes
    _pin(monkeypatch, source, content)
    served = content[:-1] + bytes([content[-1] ^ 1]) if fault == "wrong checksum" else content
    options, reason = FAULTS[fault]
    with FileServer({"/file": served}, **options) as server:
        url = server.url + "/file"
        monkeypatch.setenv(URL_VARIABLE[source], url)
        start = time.monotonic()
        with pytest.raises(DataUnavailable) as failure:
            _load(source)
        seconds = time.monotonic() - start
    with warnings.catch_warnings():
        # urllib leaves the socket of a timed-out response to the garbage collector;
        # collect it here rather than let its ResourceWarning fail a later test.
        warnings.simplefilter("ignore", ResourceWarning)
        failure.value.__traceback__ = None
        gc.collect()
    message = str(failure.value)
    assert reason in message
    assert f"download {url} and save it as {_target(source, course)}" in message
    assert seconds < TIMEOUT + SLACK, f"{fault}: the message took {seconds:.1f} s"
    assert _files(course) == []
    assert "[nltk_data]" not in capfd.readouterr().err  # no second, half-understood message


@pytest.mark.parametrize("source", SOURCES)
def test_plain_url_download_through_a_proxy(source, course, monkeypatch, crows_bytes, brown_bytes):
    content = crows_bytes if source == "crows" else brown_bytes
    _pin(monkeypatch, source, content)
    with FileServer({"/file": content}) as server, Proxy() as proxy:
        # A host name that does not resolve: only the proxy can reach it.
        monkeypatch.setenv(URL_VARIABLE[source], f"http://files.standin.invalid:{server.port}/file")
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        assert len(_load(source)) > 0
        assert proxy.requests and "files.standin.invalid" in proxy.requests[0]


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl to make a certificate")
def test_https_download_through_a_connect_tunnel(course, monkeypatch, tmp_path, crows_bytes):
    _pin(monkeypatch, "crows", crows_bytes)
    host = "files.standin.invalid"
    tls = self_signed_certificate(tmp_path, host)
    with FileServer({"/file": crows_bytes}, tls=tls) as server, Proxy() as proxy:
        monkeypatch.setenv("COURSE_CROWS_PAIRS_URL", f"https://{host}:{server.port}/file")
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        monkeypatch.setenv("SSL_CERT_FILE", str(tls[0]))  # trust the stand-in's certificate
        assert len(data.load_crows_pairs()) > 0
    assert [r.rsplit(" ", 1)[0] for r in proxy.requests] == [f"CONNECT {host}:{server.port}"]


def test_an_unreachable_proxy_fails_fast_with_the_fix(course, monkeypatch, crows_bytes):
    _pin(monkeypatch, "crows", crows_bytes)
    url = "http://files.standin.invalid/file"
    monkeypatch.setenv("COURSE_CROWS_PAIRS_URL", url)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{_closed_port()}")
    start = time.monotonic()
    with pytest.raises(DataUnavailable, match="Connection refused") as failure:
        data.load_crows_pairs()
    assert time.monotonic() - start < TIMEOUT + SLACK
    assert f"save it as {_target('crows', course)}" in str(failure.value)
    assert _files(course) == []


# The hub: Hugging Face's libraries read HF_ENDPOINT, HF_HOME and HF_HUB_OFFLINE at import,
# so each configuration runs in its own process (tests/standins/driver.py).


@pytest.fixture(scope="module")
def hub_repos(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("repos")
    return {
        ("dataset", data.YELP_DATASET): repo_files(fixtures.yelp_hub_repo(folder / "yelp")),
        ("model", MODEL): repo_files(fixtures.tiny_bert_repo(folder / "bert")),
    }


def _drive(tmp_path: Path, endpoint: str, steps: list[dict], **env) -> list[dict]:
    """Run the driver with empty caches; return one report per step."""
    environment = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("COURSE_", "HF_", "NLTK_")) and "proxy" not in k.lower()
    }
    environment.update(
        HF_ENDPOINT=endpoint,
        HF_HOME=str(tmp_path / "hf"),
        COURSE_DATA_DIR=str(tmp_path / "course"),
        COURSE_DOWNLOAD_TIMEOUT=str(HUB_TIMEOUT),
        HF_HUB_DISABLE_TELEMETRY="1",
        **env,
    )
    result = subprocess.run(
        [sys.executable, "-m", "tests.standins.driver", json.dumps(steps)],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    reports = [json.loads(line[5:]) for line in result.stdout.splitlines() if line[:5] == "STEP "]
    assert len(reports) == len(steps), f"the driver stopped early:\n{result.stderr[-3000:]}"
    return reports


def _check_failed(report: dict, reason: str) -> None:
    assert report["outcome"] == "unavailable", report["text"]
    assert reason in report["text"]
    fix = "save a CSV file" if report["load"] == "yelp" else "save_pretrained(DIR)"
    assert fix in report["text"]
    assert report["course_cache"] == []
    assert report["seconds"] < HUB_IMPORT_SECONDS + HUB_TIMEOUT + SLACK


@pytest.mark.slow  # a fresh Python process per hub call: libraries load each time
def test_hub_faults_then_the_real_download_then_offline(hub_repos, tmp_path):
    steps = [
        {"fault": "404", "load": "yelp"},
        {"fault": "404", "load": "bert"},
        {"fault": "truncated", "load": "yelp"},
        {"fault": "truncated", "load": "bert"},
        {"fault": "hang", "load": "yelp"},
        {"fault": "hang", "load": "bert"},
        {"fault": None, "load": "yelp"},
        {"fault": None, "load": "bert"},
        {"fault": "hang", "load": "yelp"},  # from the caches now: the hub is never asked
        {"fault": "hang", "load": "bert"},
    ]
    with HubServer(hub_repos) as hub:
        reports = _drive(tmp_path, hub.url, steps)
    for report, reason in zip(
        reports[:6],
        ["DatasetNotFoundError", "not a valid model", "peer closed", "config.json"]
        + ["timed out"] * 2,
        strict=True,
    ):
        _check_failed(report, reason)
        assert not any(".incomplete" in f or "snapshots" in f for f in report["hf_cache"])
    yelp, bert, yelp_again, bert_again = reports[6:]
    assert yelp["outcome"] == bert["outcome"] == "loaded", (yelp["text"], bert["text"])
    assert yelp["text"] == "50 reviews, [10, 10, 10, 10, 10] per label"
    assert bert["text"].startswith("BertForMaskedLM, logits (1, ")
    assert [r["text"] for r in (yelp_again, bert_again)] == [yelp["text"], bert["text"]]


@pytest.mark.slow  # a fresh Python process per hub call: libraries load each time
def test_hub_unreachable_fails_within_the_timeout(tmp_path):
    steps = [{"load": "yelp"}, {"load": "bert"}]
    for report in _drive(tmp_path, f"http://127.0.0.1:{_closed_port()}", steps):
        _check_failed(report, "unreachable (ConnectError")
        assert report["hf_cache"] == []


@pytest.mark.slow  # a fresh Python process per hub call: libraries load each time
def test_hub_through_a_proxy(hub_repos, tmp_path):
    with HubServer(hub_repos) as hub, Proxy() as proxy:
        endpoint = f"http://hub.standin.invalid:{hub.port}"  # reachable only through the proxy
        steps = [{"load": "yelp"}, {"load": "bert"}]
        reports = _drive(tmp_path, endpoint, steps, HTTP_PROXY=proxy.url, STANDIN_CONTROL=hub.url)
    assert [r["outcome"] for r in reports] == ["loaded", "loaded"], [r["text"] for r in reports]
    assert any("hub.standin.invalid" in line for line in proxy.requests)
