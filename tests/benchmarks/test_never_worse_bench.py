"""The goal table of benchmarks/never_worse.py and the SetFit side of benchmarks/setfit_peer.py,
on synthetic records (no training)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks import never_worse, never_worse_draws, setfit_peer  # noqa: E402


def _record(split, mode, seed, knn1, linear, map_at_r, **extra):
    metrics = {"knn1_accuracy": knn1, "linear_accuracy": linear, "map_at_r": map_at_r}
    return {"split": split, "mode": mode, "seed": seed, "metrics": metrics, "machine": "cpu",
            "threads": 1, **extra}  # fmt: skip


def test_goal_table_marks_every_refined_cell_against_the_frozen_one():
    records = [
        _record("train_10", "frozen", 0, 0.83, 0.86, 0.43),
        _record("train_10", "adapter", 0, 0.86, 0.87, 0.55),
        _record("train_10", "adapter", 1, 0.86, 0.86, 0.56),  # mean linear 0.865 >= 0.86
        _record("train_10", "finetune", 0, 0.87, 0.85, 0.60),  # linear below the frozen one
    ]
    lines = never_worse.table(records)
    adapter = next(line for line in lines if "| adapter |" in line)
    finetune = next(line for line in lines if "| finetune |" in line)
    assert "0, 1" in adapter and adapter.count("✓") == 3 and "**MET**" in adapter
    assert "86.50 ± 0.71 ✓" in adapter and "+0.50 points" in adapter  # best (kNN-1) minus 86
    assert "85.00 ✗" in finetune and "**NOT MET**" in finetune


def test_goal_table_needs_a_gain_over_the_frozen_linear_probe():
    records = [
        _record("train_5", "frozen", 0, 0.77, 0.80, 0.43),
        _record("train_5", "adapter", 0, 0.78, 0.80, 0.50),  # every cell at or above, no gain
    ]
    adapter = next(line for line in never_worse.table(records) if "| adapter |" in line)
    assert adapter.count("✓") == 3 and "+0.00 points" in adapter and "**NOT MET**" in adapter


def test_goal_table_uses_the_newest_run_of_each_seed():
    records = [
        _record("train_10", "frozen", 0, 0.83, 0.86, 0.43, started="2026-12-04T17:00:00+00:00"),
        _record("train_10", "adapter", 1, 0.80, 0.80, 0.50, started="2026-12-05T09:00:00+00:00"),
        _record("train_10", "adapter", 1, 0.90, 0.90, 0.60, started="2026-12-04T18:00:00+00:00"),
        _record("train_10", "adapter", 0, 0.86, 0.87, 0.55, started="2026-12-05T08:00:00+00:00"),
        {**_record("train_10", "adapter", 0, 0.1, 0.1, 0.1), "quick": True},  # a smoke test
    ]
    kept = never_worse.newest(records)
    assert sorted((r["seed"], r["metrics"]["linear_accuracy"]) for r in kept if r["mode"] ==
                  "adapter") == [(0, 0.87), (1, 0.80)]  # fmt: skip
    adapter = next(line for line in never_worse.table(kept) if "| adapter |" in line)
    # 0.87 and 0.80: below the frozen 0.86 (the older seed-1 run, 0.90, would have lifted it)
    assert "| 0, 1 |" in adapter and "83.50 ± 4.95 ✗" in adapter and "**NOT MET**" in adapter
    # without start times, the later line of the file wins
    plain = [
        _record("train_5", "adapter", 0, 0.7, 0.7, 0.4),
        _record("train_5", "adapter", 0, 0.8, 0.8, 0.5),
    ]
    assert never_worse.newest(plain) == [plain[1]]


def test_setfit_planned_steps_match_setfits_own_pair_count():
    sampler = pytest.importorskip("setfit.sampler")
    labels = [0] * 5 + [1] * 3 + [2] * 7 + [3]
    texts = [f"row {i}" for i in range(len(labels))]
    dataset = sampler.ContrastiveDataset(texts, labels, multilabel=False)
    assert setfit_peer.planned_steps(labels) == -(-len(dataset) // setfit_peer.SETFIT_BATCH)


def test_setfit_plan_grows_with_the_square_of_the_rows():
    five = setfit_peer.planned_steps(np.repeat(np.arange(77), 5))
    ten = setfit_peer.planned_steps(np.repeat(np.arange(77), 10))
    assert (five, ten) == (9144, 36575)  # Banking77's 5- and 10-shot splits
    assert setfit_peer.largest_rows_within(per_step_s=0.1) >= setfit_peer.largest_rows_within(1.0)
    # at 0.39 s a step, the 5-shot plan (9144 steps) fits in an hour, 6 rows a class do not
    assert setfit_peer.largest_rows_within(per_step_s=0.39) == 5


def test_setfit_section_reports_an_unfinished_run_and_the_speed_up():
    peer = {"split": "train_10", "seed": 0, "finished": False, "elapsed_s": 3600.0,
            "steps_done": 1200, "planned_steps": 36575, "estimated_total_s": 109_725.0,
            "train_rows": 770, "load_at_start": [2.0, 2.0, 2.0], "machine": "cpu", "threads": 1,
            "setfit_version": "1.2.0", "cpu_s": 1800.0}  # fmt: skip
    ours = [_record("train_10", "adapter", 0, 0.86, 0.865, 0.55, end_to_end_s=60.0,
                    cpu_s=50.0, load_at_start=[1.0, 1.0, 1.0])]  # fmt: skip
    text = setfit_peer.section([peer], ours, "cmd")
    assert "not reached (stopped at step 1,200 of 36,575)" in text
    assert "~1829x (at least 60x measured)" in text  # 109725 / 60 and 3600 / 60
    assert "86.50 (kNN-1 86.00)" in text and "accuracy not compared" in text
    # 3 s a step: 1 row a class fits in an hour, 2 (1463 steps, 73 minutes) do not
    assert "up to 1 rows a class (77 rows; 2 rows a class plan 1,463 steps)" in text


@pytest.mark.parametrize(
    ("linear", "knn1", "seconds", "verdict"),
    [(0.80, 0.79, 10.0, "**MET**"), (0.78, 0.79, 10.0, "linear below, kNN-1 at or above"),
     (0.78, 0.77, 10.0, "**NOT MET** (accuracy)"), (0.78, 0.77, 50.0, "(accuracy, speed)"), (0.80, 0.79, 50.0, "**NOT MET** (speed)")],
)  # fmt: skip
def test_setfit_verdict_of_a_finished_run(linear, knn1, seconds, verdict):
    peer = {"split": "train_2", "seed": 0, "finished": True, "accuracy": 0.79, "wall_s": 100.0,
            "cpu_s": 90.0, "load_at_start": [1.0] * 3}  # fmt: skip
    ours = _record("train_2", "adapter", 0, knn1, linear, 0.5, end_to_end_s=seconds,
                   load_at_start=[1.0] * 3)  # fmt: skip
    assert verdict in setfit_peer._our_row(peer, ours, "2-shot", "adapter")


def test_a_stopped_setfit_runs_pace_leaves_its_setup_out():
    record = {"steps_done": 11, "planned_steps": 1000}
    pace = setfit_peer._estimate(record, first_step_s=100.0, elapsed_s=120.0)
    assert pace["per_step_s"] == pytest.approx(2.0)  # 10 steps after the first in 20 s
    assert pace["estimated_total_s"] == pytest.approx(100.0 + 2.0 * 1000)


def test_earlier_cpu_finetune_runs_fill_only_the_splits_without_one(tmp_path):
    import json

    def earlier(split, seed, knn1, linear, plan="Plan(epochs=40)", gpu="none (CPU)"):
        return {"split": split, "method": "supcon", "seed": seed, "extra": {}, "knn1": knn1,
                "linear": linear, "plan": plan, "gpu": gpu}  # fmt: skip

    rows = [earlier("train", 0, 0.93, 0.92), earlier("train", 1, 0.95, 0.94),
            earlier("train", 2, 0.5, 0.5, plan="Plan(epochs=116)"),  # another plan
            earlier("train", 3, 0.5, 0.5, gpu="NVIDIA H100"),  # not this machine
            earlier("train_10", 0, 0.87, 0.87)]  # fmt: skip
    path = tmp_path / "finetune.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    ours = [_record("train_10", "finetune", 0, 0.88, 0.88, 0.6)]
    lines = never_worse.earlier_finetune(ours, path)
    assert len(lines) == 1 and lines[0].startswith("- full finetune")
    assert "seeds 0, 1" in lines[0] and "kNN-1 94.00 ± 1.41 %" in lines[0]
    assert "linear probe 93.00 ± 1.41 %" in lines[0]


def test_fresh_draws_take_n_rows_of_every_class_reproducibly():
    from benchmarks.quality_banking77 import Split

    labels = np.repeat(np.array(["a", "b", "c"]), [7, 12, 30])
    full = Split([f"text {i}" for i in range(len(labels))], labels)
    one = never_worse_draws.draw(full, 5, number=1)
    assert sorted(np.unique(one.labels, return_counts=True)[1]) == [5, 5, 5]
    assert all(full.labels[int(t.split()[1])] == label for t, label in zip(one.texts, one.labels, strict=True))  # fmt: skip
    assert never_worse_draws.draw(full, 5, number=1).texts == one.texts
    assert never_worse_draws.draw(full, 5, number=2).texts != one.texts


def test_the_draws_section_flags_a_draw_whose_adapter_is_under_the_frozen_model():
    records = [
        {**_record("10-shot", "frozen", 0, 0.82, 0.85, 0.43), "draw": 1},
        {**_record("10-shot", "adapter", 0, 0.86, 0.86, 0.55), "draw": 1},
        {**_record("10-shot", "frozen", 0, 0.81, 0.87, 0.43), "draw": 2},
        {**_record("10-shot", "adapter", 0, 0.85, 0.865, 0.55), "draw": 2},
    ]
    text = never_worse_draws.section(records)
    assert "| 10-shot | 1 | 82.00 / 85.00 / 0.430 | 86.00 / 86.00 / 0.550 | +1.00 | yes |" in text
    assert "| 10-shot | 2 |" in text and "| -0.50 | **no** |" in text
    assert "mean of 2 draws +0.25 points (1 of 2 at or above)" in text
    assert "under the frozen probe on 1 of 2 draws" in text
