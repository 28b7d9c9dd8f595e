"""Device selection prints one line; set_seed makes every generator reproducible."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from course_utils import device as device_module
from course_utils import get_device, set_seed


def _draw():
    legacy_numpy = float(np.random.rand())  # noqa: NPY002 (set_seed seeds the global RNG)
    return random.random(), legacy_numpy, torch.rand(2).tolist()


def test_set_seed_reproduces_python_numpy_and_torch():
    set_seed(7)
    first = _draw()
    set_seed(7)
    assert _draw() == first
    set_seed(8)
    assert _draw() != first


@pytest.mark.parametrize("bad", [1.5, "3", True])
def test_set_seed_rejects_non_integers(bad):
    with pytest.raises(TypeError, match="seed must be an int"):
        set_seed(bad)


def test_cpu_prints_one_line(monkeypatch, capsys):
    monkeypatch.delenv("COURSE_DEVICE", raising=False)
    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(device_module, "_mps_available", lambda: False)
    assert get_device() == torch.device("cpu")
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.startswith("Using CPU")


def test_cpu_in_colab_says_how_to_get_a_gpu(monkeypatch, capsys):
    monkeypatch.delenv("COURSE_DEVICE", raising=False)
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(device_module, "_mps_available", lambda: False)
    get_device()
    assert "Runtime → Change runtime type" in capsys.readouterr().out


def test_cuda_is_preferred_and_named(monkeypatch, capsys):
    monkeypatch.delenv("COURSE_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla T4")
    assert get_device() == torch.device("cuda")
    assert capsys.readouterr().out == "Using CUDA GPU: Tesla T4.\n"


def test_mps_is_used_on_apple_silicon(monkeypatch, capsys):
    monkeypatch.delenv("COURSE_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(device_module, "_mps_available", lambda: True)
    assert get_device() == torch.device("mps")
    assert "Apple MPS" in capsys.readouterr().out


def test_environment_variable_forces_the_device(monkeypatch, capsys):
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert get_device(verbose=False) == torch.device("cpu")
    assert capsys.readouterr().out == ""
