"""Lesson 02's cost measurement: what it times, what it computes, and what it leaves behind."""

from __future__ import annotations

import pytest
import torch

from course_utils.attention import TensorMemory, measure_attention_cost
from course_utils.plots import cost_curves


def test_memory_is_computed_from_the_two_seq_by_seq_matrices_and_measured():
    rows = measure_attention_cost([8, 16], d_k=4, batch=3, repeats=2)
    assert [row["seq"] for row in rows] == [8, 16]
    for row in rows:
        assert row["megabytes"] == pytest.approx(2 * 3 * row["seq"] ** 2 * 4 / 1e6)
        assert row["seconds"] > 0
        # measured: scores and weights held at once, plus the (3, seq, 4) output
        output = 3 * row["seq"] * 4 * 4 / 1e6
        assert row["peak_megabytes"] == pytest.approx(row["megabytes"] + output)


def test_tensor_memory_counts_new_storage_until_its_last_tensor_is_deleted():
    with TensorMemory() as memory:
        a = torch.ones(1000)  # 4,000 bytes
        b = a * 2  # 4,000 more, both alive
        view = b[:10]  # a view: nothing new
        b.mul_(3)  # in place: nothing new
        del a
        total = b.sum()  # 4 bytes
        assert memory.live == 4004
        del b
        assert memory.live == 4004  # the view keeps b's storage alive
        del view
    assert memory.peak == 8000 and memory.live == 4
    del total
    assert memory.live == 0


def test_thread_count_is_restored_after_the_run():
    before = torch.get_num_threads()
    measure_attention_cost([8], d_k=4, repeats=1, threads=1)
    assert torch.get_num_threads() == before


def test_cost_curves_report_the_fitted_slope_and_plain_tick_labels():
    import matplotlib

    matplotlib.use("Agg")
    lengths = [256, 362, 512, 1024]
    seconds = [1e-3 * (n / 256) ** 2 for n in lengths]
    megabytes = [2 * n * n * 4 / 1e6 for n in lengths]
    time_ax, memory_ax = cost_curves(lengths, seconds, megabytes, computed_megabytes=megabytes)
    for ax in (time_ax, memory_ax):
        assert ax.get_legend().get_texts()[0].get_text() == "fitted slope 2.00"
        assert [t.get_text() for t in ax.get_xticklabels()] == ["256", "512", "1,024"]
    assert "computed" in memory_ax.get_legend().get_texts()[-1].get_text()
    matplotlib.pyplot.close("all")
