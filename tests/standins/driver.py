"""Run the course's real loaders in a fresh process, step by step, and report each as JSON.

Used by tests/test_standins.py: Hugging Face's libraries read ``HF_ENDPOINT``,
``HF_HOME`` and ``HF_HUB_OFFLINE`` once, at import, so every configuration of the hub
needs its own process. ``python -m tests.standins.driver STEPS_JSON`` runs each step
``{"fault": ..., "prefix": ..., "load": "yelp" | "bert"}``: it switches the hub
stand-in's fault, calls the loader, and prints one JSON line with the outcome, the
seconds until it returned or raised, and every file then in the two caches.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.request
from pathlib import Path

MODEL = "course-tests/tiny-bert"


def _files(folder: str) -> list[str]:
    root = Path(folder)
    if not root.exists():
        return []
    return sorted(
        str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and ".locks" not in p.parts
    )


def _load(what: str) -> str:
    """Call one loader; return a short description of what it gave."""
    if what == "yelp":
        from course_utils.data import load_yelp

        frame = load_yelp("test", size=50)
        counts = frame["label"].value_counts().sort_index().tolist()
        return f"{len(frame)} reviews, {counts} per label"
    import torch

    from course_utils import pretrained

    pretrained._MASKED_LMS.clear()  # every step loads again, as a new session would
    tokenizer, model = pretrained.load_masked_lm(MODEL, device="cpu")
    ids = tokenizer("the nurse is here .", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        logits = model(input_ids=ids).logits
    return f"{type(model).__name__}, logits {tuple(logits.shape)}"


def main(steps: list[dict]) -> None:
    from course_utils.download import DataUnavailable

    endpoint = os.environ["HF_ENDPOINT"]
    control = os.environ.get("STANDIN_CONTROL", endpoint)
    for step in steps:
        if "fault" in step:
            fault = step["fault"] or "none"
            query = f"?prefix={step['prefix']}" if step.get("prefix") else ""
            urllib.request.urlopen(f"{control}/_standin/fault/{fault}{query}", timeout=5).read()
        start = time.monotonic()
        try:
            outcome, text = "loaded", _load(step["load"])
        except DataUnavailable as error:
            outcome, text = "unavailable", str(error)
        except Exception as error:  # anything else is a bug the test reports
            outcome, text = "crashed", f"{type(error).__name__}: {error}"
        report = {
            **step,
            "outcome": outcome,
            "text": text,
            "seconds": round(time.monotonic() - start, 2),
            "course_cache": _files(os.environ["COURSE_DATA_DIR"]),
            "hf_cache": _files(os.environ["HF_HOME"]),
        }
        print("STEP " + json.dumps(report), flush=True)


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
