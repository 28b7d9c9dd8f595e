"""The record of the learner's parts (issue 10): kept on a passing check, used by later lessons.

``run_in_kernel`` runs code cells in a fresh Jupyter kernel; tests of later lessons can use
it the same way to show that a notebook picks up the parts another notebook recorded.
"""

from __future__ import annotations

import os
import pickle
import textwrap

import nbformat
import pytest
import torch
from torch import nn

from course_utils import encoder, parts
from course_utils.exercises import EXERCISES, check


@pytest.fixture(autouse=True)
def record_folder(tmp_path, monkeypatch):
    """Every test gets an empty record of its own, and learner parts switched on.

    The in-process memory of what passed is emptied too, so no test sees a check that an
    earlier test in the same process (in whatever order pytest-xdist gives) made pass.
    """
    folder = tmp_path / "parts"
    monkeypatch.setenv("COURSE_PARTS_DIR", str(folder))
    monkeypatch.delenv("COURSE_PARTS", raising=False)
    parts._loaded.clear()
    parts._passed_now.clear()
    yield folder
    parts._loaded.clear()
    parts._passed_now.clear()


def run_in_kernel(cells: list[str], env: dict[str, str], timeout: int = 300) -> list[str]:
    """Run ``cells`` in a fresh python3 kernel with ``env`` set; return each cell's text output."""
    from nbclient import NotebookClient

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(textwrap.dedent(cell)) for cell in cells]
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)  # the kernel inherits the environment it is started with
    try:
        NotebookClient(notebook, timeout=timeout, kernel_name="python3").execute()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return [
        "".join(output.get("text", "") for output in cell.outputs if output.output_type == "stream")
        for cell in notebook.cells
    ]


# Learner code as a notebook would hold it: a helper, and parts that use it.


def _centre(x):
    return x - x.mean(dim=-1, keepdim=True)


def learner_layer_norm(x, weight, bias, eps=1e-5):
    centred = _centre(x)
    return centred / torch.sqrt((centred**2).mean(-1, keepdim=True) + eps) * weight + bias


class LearnerFeedForward(nn.Module):
    def __init__(self, d_model, d_ff, dropout=0.0, activation="relu"):
        super().__init__()
        self.linear1 = nn.Linear(d_model, d_ff)
        self.activation = nn.GELU() if activation == "gelu" else nn.ReLU()
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(d_ff, d_model)

    def forward(self, x):
        return self.linear2(self.dropout(self.activation(self.linear1(x))))


def _stub_feed_forward_class():
    return EXERCISES["4.2"].stub


def test_a_passing_check_records_the_part_and_prints_only_its_line(capsys):
    check("4.1", learner_layer_norm)
    assert capsys.readouterr().out.count("\n") == 1  # the check's one line, nothing else
    assert parts.get("layer_norm").impl is learner_layer_norm  # this session: the object itself
    parts._loaded.clear()  # as after a restart: the recorded copy
    part = parts.get("layer_norm")
    assert part.origin == "yours" and part.exercise == "4.1" and part.passed_at
    x = torch.randn(2, 3, 8)
    weight, bias = torch.rand(8) + 0.5, torch.randn(8)
    torch.testing.assert_close(
        part.impl(x, weight, bias), nn.functional.layer_norm(x, (8,), weight, bias)
    )


def test_a_part_never_checked_is_the_reference_not_attempted():
    part = parts.get("feed_forward")
    assert (part.origin, part.reason) == ("reference", "not attempted")
    assert part.impl is encoder.FeedForward


def test_a_later_failing_check_drops_the_earlier_pass(capsys):
    check("4.1", learner_layer_norm)

    def unbiased(x, weight, bias, eps=1e-5):
        return (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, keepdim=True) + eps)

    with pytest.raises(AssertionError):
        check("4.1", unbiased)
    part = parts.get("layer_norm")
    assert (part.origin, part.reason) == ("reference", "check failed")


def test_a_stub_keeps_an_earlier_pass_but_is_reported_when_nothing_passed():
    check("4.1", learner_layer_norm)
    with pytest.raises(NotImplementedError):
        check("4.1", EXERCISES["4.1"].stub)
    assert parts.get("layer_norm").origin == "yours"
    with pytest.raises(NotImplementedError):
        check("4.2", _stub_feed_forward_class())
    assert parts.get("feed_forward").reason == "stub"


def test_a_corrupt_record_gives_one_line_and_falls_back(record_folder, capsys):
    check("4.1", learner_layer_norm)
    capsys.readouterr()
    (record_folder / "layer_norm.pkl").write_bytes(b"\x80\x05not a pickle at all")
    parts._loaded.clear()
    part = parts.get("layer_norm")
    notice = capsys.readouterr().out
    assert (part.origin, part.reason) == ("reference", "could not be loaded")
    assert notice.count("\n") == 1 and "layer_norm" in notice and "reference" in notice
    parts.show()  # the table still prints, with the reason
    assert "could not be loaded" in capsys.readouterr().out


def test_an_unloadable_payload_gives_one_line_and_falls_back(record_folder, capsys):
    check("4.1", learner_layer_norm)
    path = record_folder / "layer_norm.pkl"
    record = pickle.loads(path.read_bytes())
    record["payload"] = b"cno_such_module_of_the_learner\nhelper\n."  # a vanished import
    path.write_bytes(pickle.dumps(record))
    parts._loaded.clear()
    capsys.readouterr()
    part = parts.get("layer_norm")
    notice = capsys.readouterr().out
    assert part.reason == "could not be loaded" and part.impl is encoder.layer_norm
    assert notice.count("\n") == 1 and "ModuleNotFoundError" in notice


def test_a_record_from_another_python_falls_back(record_folder, capsys):
    check("4.1", learner_layer_norm)
    path = record_folder / "layer_norm.pkl"
    record = pickle.loads(path.read_bytes())
    record["python"] = (3, 1)
    path.write_bytes(pickle.dumps(record))
    parts._loaded.clear()
    capsys.readouterr()
    assert parts.get("layer_norm").reason == "could not be loaded"
    assert "Python 3.1" in capsys.readouterr().out


def test_course_parts_reference_forces_every_part_to_the_reference(monkeypatch):
    check("4.1", learner_layer_norm)
    monkeypatch.setenv("COURSE_PARTS", "reference")
    part = parts.get("layer_norm")
    assert part.origin == "reference" and part.impl is encoder.layer_norm


def test_one_stubbed_part_falls_back_and_the_others_stay_yours(capsys):
    check("4.1", learner_layer_norm)
    with pytest.raises(NotImplementedError):
        check("4.2", _stub_feed_forward_class())
    block = parts.encoder_block(16, 4, 32)
    assert block.norm1.function is parts.get("layer_norm").impl  # yours
    assert type(block.feed_forward) is encoder.FeedForward  # the reference, for the stub
    parts.show()
    table = capsys.readouterr().out
    assert "layer_norm" in table and "stub" in table


def _reference_block_like(block: nn.Module, **settings) -> nn.Module:
    reference = encoder.EncoderBlock(16, 4, 32, **settings)
    reference.load_state_dict(block.state_dict())
    return reference.eval()


@pytest.mark.parametrize("norm_first", [False, True])
def test_a_block_of_all_your_parts_equals_the_reference(norm_first):
    from course_utils.attention import MultiHeadAttention

    class LearnerAttention(MultiHeadAttention):  # a learner's subclass, recorded by value
        pass

    check("3.3", LearnerAttention)
    check("4.1", learner_layer_norm)
    check("4.2", LearnerFeedForward)
    block = parts.encoder_block(16, 4, 32, norm_first=norm_first, eps=1e-4).eval()
    assert type(block.self_attn).__name__ == "LearnerAttention"
    assert type(block.feed_forward).__name__ == "LearnerFeedForward"
    x = torch.randn(3, 5, 16)
    mask = torch.tensor([[True] * 5, [True] * 3 + [False] * 2, [True] * 4 + [False]])
    reference = _reference_block_like(block, norm_first=norm_first, eps=1e-4)
    torch.testing.assert_close(
        block(x, mask=mask[:, None, None, :]), reference(x, mask=mask[:, None, None, :])
    )


def test_your_encoder_block_class_is_used_when_it_passed():
    class LearnerBlock(encoder.EncoderBlock):
        pass

    check("4.3", LearnerBlock)
    block = parts.encoder_block(16, 4, 32, dropout=0.1, norm_first=True)
    assert type(block).__name__ == "LearnerBlock" and block.norm_first
    assert block.dropout1.p == 0.1


def test_broken_names_the_part_and_the_fallback_and_is_remembered(record_folder):
    check("4.1", learner_layer_norm)
    line = parts.broken("layer_norm", RuntimeError("shape mismatch\nsecond line"))
    assert "\n" not in line and "layer_norm" in line and "4.1" in line and "reference" in line
    parts._loaded.clear()
    assert parts.get("layer_norm").reason.startswith("broke when used")
    check("4.1", learner_layer_norm)  # passing again restores it
    assert parts.get("layer_norm").origin == "yours"


def test_culprit_finds_the_learner_part_in_a_traceback():
    def broken_layer_norm(x, weight, bias, eps=1e-5):
        if x.dim() == 3 and x.size(1) == 9:  # works in the check, breaks later
            raise RuntimeError("only fails on 9 tokens")
        return learner_layer_norm(x, weight, bias, eps)

    check("4.1", broken_layer_norm)
    block = parts.encoder_block(16, 4, 32)
    with pytest.raises(RuntimeError) as caught:
        block(torch.randn(2, 9, 16))
    assert parts.culprit(caught.value) == "layer_norm"
    assert parts.culprit(ValueError("not from a part")) is None


def test_unknown_part_names_the_known_ones():
    with pytest.raises(ValueError, match="multi_head_attention"):
        parts.get("attention_heads")


@pytest.mark.slow
def test_a_record_survives_a_kernel_restart_and_loads_in_another_notebook(record_folder):
    env = {"COURSE_PARTS_DIR": str(record_folder), "COURSE_PARTS": ""}
    first = run_in_kernel(
        [
            """
            import math as m  # the notebook's own import, under its own name
            import torch
            from torch import nn
            from course_utils.exercises import check

            def centre(x):  # an earlier helper cell
                return x - x.mean(dim=-1, keepdim=True)

            def layer_norm(x, weight, bias, eps=1e-5):
                c = centre(x)
                return c / torch.sqrt((c ** 2).mean(-1, keepdim=True) + eps) * weight + bias

            class FeedForward(nn.Module):
                def __init__(self, d_model, d_ff, dropout=0.0, activation="relu"):
                    super().__init__()
                    self.linear1 = nn.Linear(d_model, d_ff)
                    self.activation = nn.GELU() if activation == "gelu" else nn.ReLU()
                    self.dropout = nn.Dropout(dropout)
                    self.linear2 = nn.Linear(d_ff, d_model)
                    self.scale = m.sqrt(1.0)  # uses the notebook's import

                def forward(self, x):
                    return self.linear2(self.dropout(self.activation(self.linear1(x))))
            """,
            'check("4.1", layer_norm)\ncheck("4.2", FeedForward)',
        ],
        env,
    )
    assert first[1].count("✓") == 2
    second = run_in_kernel(
        [
            """
            import torch
            from course_utils import parts
            from course_utils.encoder import EncoderBlock

            block = parts.encoder_block(16, 4, 32).eval()
            print(type(block.feed_forward).__name__, parts.get("layer_norm").origin)
            reference = EncoderBlock(16, 4, 32).eval()
            reference.load_state_dict(block.state_dict())
            x = torch.randn(2, 5, 16)
            print("equal:", torch.allclose(block(x), reference(x), atol=1e-6))
            parts.show()
            """
        ],
        env,
    )
    assert "FeedForward yours" in second[0] and "equal: True" in second[0]
    assert "centre" not in second[0]  # the helper travelled with the part, silently


def test_demos_use_your_code_once_its_check_passed_and_say_when_not(capsys):
    assert parts.yours_or_reference("4.1", learner_layer_norm) is encoder.layer_norm
    assert "4.1" in capsys.readouterr().out  # one line saying the course's stands in
    check("4.1", learner_layer_norm)
    capsys.readouterr()
    assert parts.yours_or_reference("4.1", learner_layer_norm) is learner_layer_norm
    assert capsys.readouterr().out == ""

    def my_loader(mha, layer):  # 3.4 is not a kept part, but its demo still uses yours
        return EXERCISES["3.4"].reference(mha, layer)

    check("3.4", my_loader)
    assert parts.yours_or_reference("3.4", my_loader) is my_loader


def test_a_part_that_cannot_be_kept_costs_one_line_not_the_check(capsys):
    import threading

    lock = threading.Lock()  # cannot be pickled, so neither can a function holding it

    def locked_layer_norm(x, weight, bias, eps=1e-5):
        with lock:
            return learner_layer_norm(x, weight, bias, eps)

    check("4.1", locked_layer_norm)
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("✓ 4.1") and len(out) == 2 and "could not be kept" in out[1]
    assert parts.get("layer_norm").impl is locked_layer_norm  # this session still uses it
    parts._loaded.clear()  # after a restart: nothing was kept
    assert parts.get("layer_norm").reason == "not attempted"
