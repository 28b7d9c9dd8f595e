"""The data layer, offline: each loader from a local file, from a warm cache, and with
neither file nor network; interrupted and corrupted downloads; the masked LM loaded once.

No test touches the network: the one function that opens URLs and datasets.load_dataset
are replaced by fakes (tests/test_standins.py runs the real ones against local servers).
Files under ``COURSE_SHARED_DATA`` (default ``<repo>/../shared/data``) are used when
present, small fixtures otherwise.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from course_utils import data, download, pretrained
from course_utils.download import CorruptFileError, DataUnavailable

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("COURSE_SHARED_DATA", REPO.parent / "shared" / "data"))
SHARED_BROWN = SHARED / "nltk_data" / "corpora" / "brown.zip"
SHARED_CROWS = SHARED / "crows_pairs" / "crows_pairs_anonymized.csv"
SHARED_YELP = SHARED / "yelp" / "kaggle_yelp10k"
FAST_FAILURE_SECONDS = 10
REAL_URLOPEN = download._urlopen
ENV_VARS = (
    "COURSE_DATA_DIR",
    "NLTK_DATA",
    "COURSE_YELP_TRAIN",
    "COURSE_YELP_TEST",
    "COURSE_CROWS_PAIRS",
    "COURSE_CROWS_PAIRS_URL",
    "COURSE_BROWN_URL",
    "COURSE_MASKED_LM",
    "COURSE_OFFLINE",
    "HF_HUB_OFFLINE",
)


def _no_network(*args, **kwargs):
    raise urllib.error.URLError("network disabled in tests")


def _closed_port() -> int:
    """A local port nobody listens on: connecting to it is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """A fresh cache, no data env vars, and every way to the network replaced by a failure."""
    import nltk
    from huggingface_hub import constants

    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    cache = tmp_path / "cache"
    monkeypatch.setenv("COURSE_DATA_DIR", str(cache))
    monkeypatch.setattr(download, "_urlopen", _no_network)
    monkeypatch.setattr(nltk.data, "path", [])  # ignore any nltk_data folder on this machine
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    return cache


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def _brown_zip(folder: Path) -> Path:
    """A tiny brown.zip in the real layout (reading the shared copy takes seconds)."""
    path = folder / "brown.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("brown/cats.txt", "ca01 news\nca02 news\n")
        archive.writestr(
            "brown/ca01", "\n\tThe/at River/nn-tl Bank/nn-tl ./.\n\n\tIt/pps rose/vbd ./.\n"
        )
        archive.writestr("brown/ca02", "\n\tMoney/nn is/bez 10/cd ./.\n")
    return path


def _install_brown(nltk_dir: Path, tmp_path: Path) -> Path:
    target = nltk_dir / "corpora" / "brown.zip"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_brown_zip(tmp_path), target)
    return target


def _check_brown(sentences):
    assert sentences == [["the", "river", "bank"], ["it", "rose"], ["money", "is"]]


@pytest.mark.slow  # reads the whole Brown corpus
def test_brown_from_the_shared_nltk_data(monkeypatch):
    if not SHARED_BROWN.is_file():
        pytest.skip(f"no shared copy at {SHARED_BROWN}")
    monkeypatch.setenv("NLTK_DATA", str(SHARED_BROWN.parent.parent))
    sentences = data.brown_sentences()
    assert len(sentences) == 57_340 and sentences[0][:3] == ["the", "fulton", "county"]
    words = [w for s in sentences for w in s]
    assert all(w == w.lower() and any(c.isalpha() for c in w) for w in words)
    assert len(data.brown_corpus().sents()[0]) == 25  # raw tokens, without a second full parse
    # the fast reader gives nltk's own sentences (three files of three genres)
    corpus = data.brown_corpus()
    for fileid in ("ca01", "cf13", "cr09"):
        assert data.brown_file_sentences(corpus.raw(fileid)) == list(corpus.sents(fileid))
    assert data.brown_token_sentences(max_sentences=30) == list(corpus.sents()[:30])
    ours = data.brown_token_sentences()
    assert len(ours) == len(sentences)
    last = corpus.fileids()[-1]
    assert ours[-len(corpus.sents(last)) :] == list(corpus.sents(last))


@pytest.mark.parametrize("layout", ["zip", "folder", "cache"])
def test_brown_read_without_nltk_gives_nltks_sentences(monkeypatch, tmp_path, isolated, layout):
    """A copy on NLTK_DATA or in the cache is read without nltk (whose import takes ~2 s)."""
    folder = isolated / "nltk_data" if layout == "cache" else tmp_path / "nltk_data"
    zipped = _install_brown(folder, tmp_path)
    if layout == "folder":  # nltk also reads an unzipped corpora/brown
        with zipfile.ZipFile(zipped) as archive:
            archive.extractall(zipped.parent)
        zipped.unlink()
    if layout != "cache":
        monkeypatch.setenv("NLTK_DATA", str(folder))
    expected = [list(s) for s in data.brown_corpus().sents()]  # nltk's own reader
    code = (
        "import sys; from course_utils.data import brown_token_sentences as read; "
        "print(read()); print('nltk' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ
    )
    sentences, nltk_imported = result.stdout.splitlines()
    assert sentences == str(expected) and nltk_imported == "False"


def test_brown_from_nltk_data_does_not_download(monkeypatch, tmp_path, isolated):
    folder = tmp_path / "elsewhere"
    _install_brown(folder, tmp_path)
    monkeypatch.setenv("NLTK_DATA", str(folder))
    _check_brown(data.brown_sentences())
    assert not (isolated / "nltk_data").exists()


def test_brown_from_warm_cache(tmp_path, isolated):
    _install_brown(isolated / "nltk_data", tmp_path)
    _check_brown(data.brown_sentences())
    assert data.brown_sentences(lowercase=False, words_only=False)[2] == ["Money", "is", "10", "."]


def test_brown_download_goes_to_the_cache_once(monkeypatch, tmp_path, isolated):
    content = _brown_zip(tmp_path).read_bytes()
    monkeypatch.setattr(data, "BROWN_SHA256", hashlib.sha256(content).hexdigest())
    monkeypatch.setattr(data, "BROWN_BYTES", len(content))
    monkeypatch.setenv("COURSE_BROWN_URL", "http://mirror.test/brown.zip")
    opened = _serve(monkeypatch, content)
    _check_brown(data.brown_sentences())
    _check_brown(data.brown_sentences())
    assert opened == ["http://mirror.test/brown.zip"]
    assert _files(isolated) == ["brown.zip"]


@pytest.mark.parametrize("offline", [False, True])
def test_brown_without_file_or_network_fails_fast_with_one_message(monkeypatch, isolated, offline):
    if offline:
        monkeypatch.setenv("COURSE_OFFLINE", "1")
    start = time.monotonic()
    with pytest.raises(DataUnavailable) as failure:
        data.brown_corpus()
    assert time.monotonic() - start < FAST_FAILURE_SECONDS
    message = str(failure.value)
    assert "Tried" in message and f"downloading {data.BROWN_URL}" in message
    assert f"save it as {isolated / 'nltk_data' / 'corpora' / 'brown.zip'}" in message
    assert ("offline mode" if offline else "network disabled in tests") in message


def test_brown_download_with_a_wrong_checksum_says_where_to_save_a_good_copy(
    monkeypatch, tmp_path, isolated
):
    _serve(monkeypatch, _brown_zip(tmp_path).read_bytes())  # not the pinned file
    with pytest.raises(DataUnavailable, match="wrong size or checksum") as failure:
        data.brown_corpus()
    assert f"save it as {isolated / 'nltk_data' / 'corpora' / 'brown.zip'}" in str(failure.value)
    assert _files(isolated) == []


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupted_cached_brown_is_detected(tmp_path, isolated, damage):
    target = _install_brown(isolated / "nltk_data", tmp_path)
    content = target.read_bytes()
    target.write_bytes(b"not a zip" * 100 if damage == "garbage" else content[: len(content) // 2])
    with pytest.raises(CorruptFileError, match="Delete it") as failure:
        data.brown_corpus()
    assert str(target) in str(failure.value)


def test_brown_falls_back_to_lee_with_a_visible_notice(capsys):
    sentences = data.brown_sentences(fallback=True)
    assert "NOTICE" in capsys.readouterr().out
    assert sentences == data.lee_sentences() and len(sentences) > 200


class FakeResponse(io.BytesIO):
    """Stands in for urlopen's response; after ``fail_after`` bytes the connection drops."""

    def __init__(self, content: bytes, fail_after: int | None = None):
        super().__init__(content)
        self.headers = {"Content-Length": str(len(content))}
        self.fail_after = fail_after

    def read(self, size=-1):
        if self.fail_after is not None and self.tell() >= self.fail_after:
            raise ConnectionResetError("connection dropped mid-download")
        return super().read(size)


def _serve(monkeypatch, content: bytes, fail_after: int | None = None) -> list[str]:
    opened = []

    def fake_urlopen(url, timeout):
        assert timeout <= FAST_FAILURE_SECONDS
        opened.append(url)
        return FakeResponse(content, fail_after)

    monkeypatch.setattr(download, "_urlopen", fake_urlopen)
    return opened


def test_download_is_verified_and_atomic(monkeypatch, tmp_path):
    content = os.urandom(3 << 16)
    _serve(monkeypatch, content)
    target = tmp_path / "dl" / "file.bin"
    digest = hashlib.sha256(content).hexdigest()
    assert download.download("http://x/f", target, sha256=digest, size=len(content)) == target
    assert target.read_bytes() == content and _files(tmp_path / "dl") == ["file.bin"]


def test_interrupted_download_leaves_no_file(monkeypatch, tmp_path):
    _serve(monkeypatch, os.urandom(4 << 16), fail_after=1 << 16)
    with pytest.raises(ConnectionResetError):
        download.download("http://x/f", tmp_path / "dl" / "file.bin")
    assert _files(tmp_path / "dl") == []


def test_download_with_wrong_checksum_leaves_no_file(monkeypatch, tmp_path):
    _serve(monkeypatch, b"something else")
    with pytest.raises(CorruptFileError, match="not saved"):
        download.download("http://x/f", tmp_path / "dl" / "f", sha256="0" * 64)
    assert _files(tmp_path / "dl") == []


def test_large_download_shows_a_progress_bar(monkeypatch, tmp_path, capsys):
    _serve(monkeypatch, bytes(download.PROGRESS_BAR_BYTES + 10))
    download.download("http://x/f", tmp_path / "big.bin", description="big.bin")
    assert "big.bin" in capsys.readouterr().err


def test_closed_local_port_fails_fast(tmp_path, monkeypatch):
    monkeypatch.setattr(download, "_urlopen", REAL_URLOPEN)  # pointed at a port nobody uses
    port = _closed_port()
    start = time.monotonic()
    with pytest.raises(OSError):
        download.download(f"http://127.0.0.1:{port}/file.csv", tmp_path / "file.csv")
    assert time.monotonic() - start < FAST_FAILURE_SECONDS
    assert _files(tmp_path) == []


@pytest.fixture
def crows_file(tmp_path, monkeypatch) -> Path:
    """The shared CrowS-Pairs CSV, or a three-row one whose checksum the loader is told."""
    if SHARED_CROWS.is_file():
        return SHARED_CROWS
    path = tmp_path / "crows.csv"
    pd.DataFrame(
        {
            "sent_more": ["He is a nurse.", "a", "b"],
            "sent_less": ["She is a nurse.", "c", "d"],
            "stereo_antistereo": ["antistereo", "stereo", "stereo"],
            "bias_type": ["gender", "age", "religion"],
        }
    ).to_csv(path)
    monkeypatch.setattr(data, "CROWS_PAIRS_SHA256", download.file_sha256(path))
    monkeypatch.setattr(data, "CROWS_PAIRS_BYTES", path.stat().st_size)
    return path


def _rows(path: Path) -> int:
    return 1508 if path == SHARED_CROWS else 3


def test_crows_pairs_from_path_and_env(crows_file, monkeypatch):
    assert len(data.load_crows_pairs(crows_file)) == _rows(crows_file)
    monkeypatch.setenv("COURSE_CROWS_PAIRS", str(crows_file))
    frame = data.load_crows_pairs()
    assert len(frame) == _rows(crows_file) and set(data.CROWS_PAIRS_COLUMNS) <= set(frame.columns)


def test_crows_pairs_env_pointing_nowhere_names_the_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_CROWS_PAIRS", str(tmp_path / "missing.csv"))
    with pytest.raises(DataUnavailable, match="COURSE_CROWS_PAIRS"):
        data.load_crows_pairs()


def test_crows_pairs_downloads_once_then_uses_the_warm_cache(crows_file, monkeypatch, isolated):
    opened = _serve(monkeypatch, crows_file.read_bytes())
    first = data.load_crows_pairs()
    monkeypatch.setattr(download, "_urlopen", _no_network)
    pd.testing.assert_frame_equal(data.load_crows_pairs(), first)
    assert opened == [data.CROWS_PAIRS_URL] and len(first) == _rows(crows_file)
    assert _files(isolated) == ["crows_pairs_anonymized.csv"]


def test_crows_pairs_url_can_point_at_a_mirror(crows_file, monkeypatch, isolated):
    monkeypatch.setenv("COURSE_CROWS_PAIRS_URL", "http://mirror.test/crows.csv")
    opened = _serve(monkeypatch, crows_file.read_bytes())
    assert len(data.load_crows_pairs()) == _rows(crows_file)
    assert opened == ["http://mirror.test/crows.csv"]


def test_crows_pairs_corrupt_download_gives_the_manual_fix(crows_file, monkeypatch, isolated):
    content = bytearray(crows_file.read_bytes())
    content[10] ^= 1
    _serve(monkeypatch, bytes(content))
    with pytest.raises(DataUnavailable, match="wrong size or checksum") as failure:
        data.load_crows_pairs()
    cached = isolated / "crows_pairs" / "crows_pairs_anonymized.csv"
    assert f"download {data.CROWS_PAIRS_URL} and save it as {cached}" in str(failure.value)
    assert _files(isolated) == []


def test_crows_pairs_interrupted_download_leaves_no_file(crows_file, monkeypatch, isolated):
    _serve(monkeypatch, crows_file.read_bytes(), fail_after=100)
    with pytest.raises(DataUnavailable, match="connection dropped"):
        data.load_crows_pairs()
    assert _files(isolated) == []


def test_crows_pairs_without_file_or_network_fails_fast(isolated):
    start = time.monotonic()
    with pytest.raises(DataUnavailable) as failure:
        data.load_crows_pairs()
    assert time.monotonic() - start < FAST_FAILURE_SECONDS
    message = str(failure.value)
    cached = isolated / "crows_pairs" / "crows_pairs_anonymized.csv"
    assert f"save it as {cached}" in message and data.CROWS_PAIRS_URL in message
    assert "COURSE_CROWS_PAIRS" in message and "network disabled in tests" in message


def test_corrupted_cached_crows_pairs_is_detected(crows_file, isolated):
    cached = isolated / "crows_pairs" / "crows_pairs_anonymized.csv"
    cached.parent.mkdir(parents=True)
    content = bytearray(crows_file.read_bytes())
    content[10] ^= 1  # one flipped bit, same size: only the checksum can tell
    cached.write_bytes(bytes(content))
    with pytest.raises(CorruptFileError, match="Delete it") as failure:
        data.load_crows_pairs()
    assert str(cached) in str(failure.value)


def test_shared_crows_pairs_matches_the_pinned_checksum():
    if not SHARED_CROWS.is_file():
        pytest.skip(f"no shared copy at {SHARED_CROWS}")
    download.verify_file(SHARED_CROWS, sha256=data.CROWS_PAIRS_SHA256, size=data.CROWS_PAIRS_BYTES)


def _yelp_file(tmp_path: Path, split: str = "train") -> Path:
    """The shared Kaggle Yelp split if present, else 50 made-up reviews with labels 0-4."""
    shared = SHARED_YELP / f"{split}.csv"
    if shared.is_file():
        return shared
    path = tmp_path / f"{split}.csv"
    pd.DataFrame(
        {
            "label": [i % 5 for i in range(50)],
            "text": [f"review {i},\nwith a newline" for i in range(50)],
        }
    ).to_csv(path, index=False)
    return path


def _check_yelp(frame: pd.DataFrame, rows: int | None = None):
    assert list(frame.columns) == ["label", "text"]
    assert frame["label"].between(0, 4).all() and frame["label"].dtype == "int64"
    assert frame["text"].map(type).eq(str).all()
    if rows is not None:
        assert len(frame) == rows


def test_yelp_from_a_local_csv_and_parquet(tmp_path):
    source = _yelp_file(tmp_path)
    frame = data.load_yelp(path=source)
    _check_yelp(frame, len(pd.read_csv(source)))
    parquet = tmp_path / "reviews.parquet"
    frame.to_parquet(parquet)
    pd.testing.assert_frame_equal(data.load_yelp(path=parquet), frame)
    small = data.load_yelp(path=source, size=20, seed=1)
    _check_yelp(small, 20)
    pd.testing.assert_frame_equal(small, data.load_yelp(path=source, size=20, seed=1))


@pytest.mark.parametrize("split", ["train", "test"])
def test_yelp_from_env_var_and_from_a_file_dropped_in_the_cache(
    tmp_path, monkeypatch, split, isolated
):
    source = _yelp_file(tmp_path, split)
    monkeypatch.setenv(f"COURSE_YELP_{split.upper()}", str(source))
    expected = data.load_yelp(split)
    _check_yelp(expected, len(pd.read_csv(source)))
    monkeypatch.delenv(f"COURSE_YELP_{split.upper()}")
    (isolated / "yelp").mkdir(parents=True)
    shutil.copyfile(source, isolated / "yelp" / f"{split}.csv")
    pd.testing.assert_frame_equal(data.load_yelp(split), expected)


@pytest.mark.parametrize(
    ("columns", "error"),
    [
        ({"stars": [1, 2], "text": ["a", "b"]}, "missing \\['label'\\]"),
        ({"label": [1, 5], "text": ["a", "b"]}, "subtract 1"),
        ({"label": [0, 7], "text": ["a", "b"]}, "0 to 4"),
        ({"label": [0.5, 1], "text": ["a", "b"]}, "0 to 4"),
        ({"label": [0, 1], "text": ["a", None]}, "no text"),
    ],
)
def test_yelp_file_is_validated_with_a_clear_error(tmp_path, columns, error):
    path = tmp_path / "bad.csv"
    pd.DataFrame(columns).to_csv(path, index=False)
    with pytest.raises(ValueError, match=error) as failure:
        data.load_yelp(path=path)
    assert str(path) in str(failure.value)


def _fake_hub_dataset(monkeypatch, calls: list):
    import datasets

    def fake_load_dataset(name, split):
        calls.append((name, split))
        labels = [i % 5 for i in range(300)]
        return datasets.Dataset.from_dict({"label": labels, "text": [f"r{i}" for i in range(300)]})

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    monkeypatch.setattr(data, "hub_unreachable", lambda: None)  # the fake needs no hub


def test_yelp_online_sample_is_balanced_seeded_and_cached(monkeypatch, isolated):
    calls = []
    _fake_hub_dataset(monkeypatch, calls)
    first = data.load_yelp("test", size=52, seed=3)
    _check_yelp(first, 52)
    assert first["label"].value_counts().sort_index().tolist() == [11, 11, 10, 10, 10]
    monkeypatch.setattr("datasets.load_dataset", _no_network)
    pd.testing.assert_frame_equal(data.load_yelp("test", size=52, seed=3), first)  # warm cache
    assert calls == [(data.YELP_DATASET, "test")]
    assert _files(isolated / "yelp") == [
        "yelp_review_full-test-52-seed3.parquet",
        "yelp_review_full-test-52-seed3.parquet.sha256",
    ]
    _fake_hub_dataset(monkeypatch, calls)
    other = data.load_yelp("test", size=52, seed=4, data_dir=isolated / "other")
    assert not other["text"].equals(first["text"])  # another seed, another sample


def test_yelp_interrupted_write_leaves_no_file(monkeypatch, isolated):
    _fake_hub_dataset(monkeypatch, [])

    def half_written(self, path, **kwargs):
        Path(path).write_bytes(b"PAR1 half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(pd.DataFrame, "to_parquet", half_written)
    with pytest.raises(KeyboardInterrupt):
        data.load_yelp("train", size=10)
    assert _files(isolated / "yelp") == []


def test_corrupted_cached_yelp_sample_is_detected(monkeypatch, isolated):
    _fake_hub_dataset(monkeypatch, [])
    data.load_yelp("train", size=10)
    cached = isolated / "yelp" / "yelp_review_full-train-10-seed0.parquet"
    cached.write_bytes(cached.read_bytes()[:-20] + bytes(20))
    with pytest.raises(CorruptFileError, match="Delete it") as failure:
        data.load_yelp("train", size=10)
    assert str(cached) in str(failure.value)


def test_yelp_without_file_or_network_fails_fast(monkeypatch, isolated):
    monkeypatch.setattr("datasets.load_dataset", _no_network)
    start = time.monotonic()
    with pytest.raises(DataUnavailable) as failure:
        data.load_yelp("train")
    assert time.monotonic() - start < FAST_FAILURE_SECONDS
    message = str(failure.value)
    assert f"as {isolated / 'yelp' / 'train.csv'}" in message and "COURSE_YELP_TRAIN" in message
    assert "Yelp/yelp_review_full" in message and "unreachable" in message


def test_yelp_rejects_a_bad_split():
    with pytest.raises(ValueError, match="'validation'"):
        data.load_yelp("validation")


@pytest.fixture(scope="module")
def tiny_masked_lm(tmp_path_factory) -> Path:
    """A two-layer BERT with a 20-word WordPiece vocabulary, saved with save_pretrained."""
    from transformers import BertConfig, BertForMaskedLM, BertTokenizer

    folder = tmp_path_factory.mktemp("tiny_bert")
    vocab = folder / "vocab.txt"
    words = "[PAD] [UNK] [CLS] [SEP] [MASK] the a cat dog sat on mat river bank money ##s . is"
    words = words.split()
    vocab.write_text("\n".join(words) + "\n")
    tokenizer = BertTokenizer.from_pretrained(folder)  # reads vocab.txt (transformers 4 and 5)
    config = BertConfig(
        vocab_size=len(words),
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
    )
    model_dir = folder / "model"
    BertForMaskedLM(config).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    return model_dir


def test_masked_lm_loads_from_a_directory_once_per_process(tiny_masked_lm, monkeypatch):
    import torch

    monkeypatch.setattr(pretrained, "_MASKED_LMS", {})
    tokenizer, model = pretrained.load_masked_lm(tiny_masked_lm, device="cpu")
    assert not model.training
    ids = tokenizer("the cats sat on the mat", return_tensors="pt")["input_ids"]
    assert tokenizer.convert_ids_to_tokens(ids[0].tolist())[1:4] == ["the", "cat", "##s"]
    with torch.no_grad():
        logits = model(input_ids=ids).logits
    assert logits.shape == (1, ids.shape[1], tokenizer.vocab_size)
    again = pretrained.load_masked_lm(str(tiny_masked_lm), device=torch.device("cpu"))
    assert again.model is model and again.tokenizer is tokenizer
    monkeypatch.setenv("COURSE_MASKED_LM", str(tiny_masked_lm))
    assert pretrained.load_masked_lm(device="cpu").model is model


def test_masked_lm_missing_directory_fails_fast(tmp_path):
    start = time.monotonic()
    with pytest.raises(DataUnavailable, match="no such directory"):
        pretrained.load_masked_lm(tmp_path / "no_model", device="cpu")
    assert time.monotonic() - start < FAST_FAILURE_SECONDS


@pytest.mark.parametrize("offline", [False, True])
def test_masked_lm_from_the_hub_without_network_fails_fast(monkeypatch, offline):
    if offline:
        monkeypatch.setenv("COURSE_OFFLINE", "1")
    start = time.monotonic()
    with pytest.raises(DataUnavailable) as failure:
        pretrained.load_masked_lm("course-tests/no-such-model", device="cpu")
    assert time.monotonic() - start < FAST_FAILURE_SECONDS
    message = str(failure.value)
    assert "Hugging Face cache" in message and "save_pretrained(DIR)" in message
    assert ("offline mode" if offline else "unreachable") in message


def test_cache_dir_precedence(monkeypatch, tmp_path):
    assert data.cache_dir(tmp_path / "argument") == tmp_path / "argument"
    assert data.cache_dir() == tmp_path / "cache"  # COURSE_DATA_DIR, set by the fixture
    monkeypatch.delenv("COURSE_DATA_DIR")
    assert download.cache_dir() == REPO / "data"  # an editable checkout
    monkeypatch.setattr(download, "PACKAGE_DIR", tmp_path / "site-packages" / "course_utils")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert download.cache_dir() == tmp_path / "xdg" / "transformers-from-scratch"
