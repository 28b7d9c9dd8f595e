"""Pick the compute device and make runs reproducible."""

from __future__ import annotations

import os
import random
import sys

import numpy as np
import torch

__all__ = ["describe_device", "get_device", "in_colab", "set_seed"]


def in_colab() -> bool:
    """True when running inside Google Colab."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def describe_device(device: torch.device) -> str:
    """One sentence saying which device was found and, on a CPU in Colab, how to get a GPU."""
    if device.type == "cuda":
        return f"Using CUDA GPU: {torch.cuda.get_device_name(device)}."
    if device.type == "mps":
        return "Using Apple MPS (the GPU of an Apple-silicon Mac)."
    if in_colab():
        return (
            "Using CPU. Every lesson runs on a CPU; for faster training in lessons 6 and 7 "
            "choose Runtime → Change runtime type → T4 GPU, then run the notebook again."
        )
    return "Using CPU. Every lesson is sized to run on a laptop CPU."


def get_device(verbose: bool = True) -> torch.device:
    """Return the best available device: CUDA, then Apple MPS, then CPU.

    Set the environment variable ``COURSE_DEVICE`` (e.g. ``cpu``) to force a choice.
    With ``verbose`` the choice is printed as one line.
    """
    forced = os.environ.get("COURSE_DEVICE")
    if forced:
        device = torch.device(forced)
    elif torch.cuda.is_available():
        device = torch.device("cuda")
    elif _mps_available():
        device = torch.device("mps")
    else:
        device = torch.device("cpu")
    if verbose:
        print(describe_device(device))
    return device


def set_seed(seed: int) -> None:
    """Seed Python's, NumPy's and PyTorch's random generators (all devices) with ``seed``."""
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 (learners' code uses the global NumPy RNG)
    torch.manual_seed(seed)  # also seeds every CUDA device
