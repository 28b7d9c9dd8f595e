"""Pretrained models from the Hugging Face hub or a local folder, each loaded once per process.

Where a model is looked for, in order: a local directory written by ``save_pretrained``;
Hugging Face's own cache (``HF_HOME``, shared with other projects, so a model already
downloaded is reused); the hub. Offline, the hub is not waited for: one request with the
course's timeout (through any proxy ``huggingface_hub`` itself would use) fails first, and
:class:`~course_utils.download.DataUnavailable` says what to do.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from course_utils.download import (
    describe_error,
    hub_timeouts,
    hub_unreachable,
    offline,
    unavailable,
)

if TYPE_CHECKING:  # torch and transformers are imported when a model is loaded
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = ["DEFAULT_MASKED_LM", "MaskedLM", "load_masked_lm"]

DEFAULT_MASKED_LM = "bert-base-uncased"


class MaskedLM(NamedTuple):
    """A tokenizer and its masked language model (in eval mode); unpacks as a pair."""

    tokenizer: PreTrainedTokenizerBase
    model: PreTrainedModel


_MASKED_LMS: dict[tuple[str, str], MaskedLM] = {}


def load_masked_lm(
    name_or_dir: str | os.PathLike | None = None, device: torch.device | str | None = None
) -> MaskedLM:
    """Load a masked language model and its tokenizer once per process: ``(tokenizer, model)``.

    ``name_or_dir`` is a Hugging Face hub name or a local directory written by
    ``save_pretrained`` (default: ``COURSE_MASKED_LM``, else ``bert-base-uncased``).
    Hub models live in Hugging Face's own cache (``HF_HOME``), shared with other
    projects. Later calls with the same name and device return the same objects.
    """
    import torch

    from course_utils.device import get_device

    name = str(name_or_dir or os.environ.get("COURSE_MASKED_LM") or DEFAULT_MASKED_LM)
    device = torch.device(device) if device is not None else get_device(verbose=False)
    local = Path(name).expanduser()
    looks_like_path = local.is_absolute() or name.startswith((".", "~")) or local.exists()
    if looks_like_path:
        name = str(local.resolve())
    key = (name, str(device))
    if key in _MASKED_LMS:
        return _MASKED_LMS[key]

    from transformers import AutoModelForMaskedLM, AutoTokenizer

    def load(**options: Any) -> MaskedLM:
        tokenizer = AutoTokenizer.from_pretrained(name, **options)
        model = AutoModelForMaskedLM.from_pretrained(name, **options)
        return MaskedLM(tokenizer, model.to(device).eval())

    fix = (
        f"on a machine with internet run AutoTokenizer.from_pretrained({name!r}) and "
        f"AutoModelForMaskedLM.from_pretrained({name!r}), call .save_pretrained(DIR) on both, "
        "copy DIR here and pass it as name_or_dir (or set COURSE_MASKED_LM to DIR)."
    )
    if looks_like_path:
        if not local.is_dir():
            raise unavailable(
                f"the masked language model {name}", [f"{name} (no such directory)"], fix
            )
        loaded = load(local_files_only=True)
    else:
        try:
            loaded = load(local_files_only=True)
        except OSError as error:
            tried = [f"the Hugging Face cache (not there: {describe_error(error)[:120]})"]
            reason = "skipped: offline mode is set" if offline() else hub_unreachable()
            if reason is None:
                try:
                    with hub_timeouts():
                        loaded = load()  # downloads, with Hugging Face's own progress bars
                except Exception as download_error:  # transformers and httpx raise many kinds
                    reason = describe_error(download_error)
            if reason is not None:
                tried.append(f"downloading {name!r} from the hub ({reason})")
                raise unavailable(f"the masked language model {name!r}", tried, fix) from None
    _MASKED_LMS[key] = loaded
    return loaded
