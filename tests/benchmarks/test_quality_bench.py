"""The quality benchmark's orchestration and report, on fake run records with known answers:
mean ± std, the MET / NOT MET verdicts, the claim verdicts, the time budget's skipping, the
marker replacement that leaves other sections intact, and a whole report rendered from a JSONL
file (no training)."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / ".." / "shared" / "data" / "banking77"
sys.path.insert(0, str(ROOT))

b77 = pytest.importorskip("benchmarks.quality_banking77")
rep = pytest.importorskip("benchmarks.quality_report")
markdown = pytest.importorskip("benchmarks.markdown")


def record(split, mode, config, seed, knn1, *, linear=None, map_at_r=0.5, quick=False, **extra):
    rec = {
        "split": split, "mode": mode, "config": config, "seed": seed, "quick": quick,
        "metrics": {"knn1_accuracy": knn1, "linear_accuracy": knn1 if linear is None else linear,
                    "map_at_r": map_at_r},
        "fit_s": 10.0, "transform_s": 1.0, "eval_s": 1.0, "steps": 10, "test_rows": 3080,
        "diagnostics": {"ucl": 4.0, "hucl": 3.9, "scl": 4.5, "hscl": 4.4, "batches": 6,
                        "held": 0},
    }  # fmt: skip
    rec.update(extra)
    return rec


# ----------------------------------------------------------------------------- statistics


def test_mean_std_matches_statistics_and_formats_percent():
    values = [0.90, 0.92, 0.95]
    mean, std = rep.mean_std(values)
    assert mean == pytest.approx(statistics.fmean(values))
    assert std == pytest.approx(statistics.stdev(values))
    assert rep.fmt_mean_std(values) == f"{100 * mean:.2f} ± {100 * std:.2f}"
    assert rep.fmt_mean_std([0.9]) == "90.00"  # one seed: no ±
    assert rep.fmt_mean_std([0.7512], 1.0, 3) == "0.751"
    with pytest.raises(ValueError, match="at least one value"):
        rep.mean_std([])


def test_compare_judges_the_difference_against_the_larger_seed_std():
    base = [record("train_10", "adapter", "supcon", s, v) for s, v in enumerate([0.80, 0.81, 0.82])]
    far = [record("train_10", "adapter", "x", s, v) for s, v in enumerate([0.85, 0.86, 0.87])]
    near = [record("train_10", "adapter", "x", s, v) for s, v in enumerate([0.80, 0.82, 0.83])]
    c = rep.compare(base, far, "knn1_accuracy")
    assert c["diff"] == pytest.approx(5.0) and c["spread"] == pytest.approx(1.0)
    assert c["verdict"] == "better"
    assert rep.compare(far, base, "knn1_accuracy")["verdict"] == "worse"
    near_c = rep.compare(base, near, "knn1_accuracy")
    assert near_c["spread"] == pytest.approx(100 * statistics.stdev([0.80, 0.82, 0.83]))
    assert near_c["verdict"] == "within spread"
    assert rep.compare(base[:1], far[:1], "knn1_accuracy")["verdict"] == "one seed"


# ----------------------------------------------------------------------------- targets


def _adapter_supcon(knn1, map_at_r, seconds):
    return record("train", "adapter", "supcon", 0, knn1, map_at_r=map_at_r, end_to_end_s=seconds)


@pytest.mark.parametrize(
    ("knn1", "map_at_r", "seconds", "verdict"),
    [
        (0.935, 0.76, 200.0, "**MET**"),
        (0.930, 0.75, 300.0, "**MET**"),  # the bounds themselves pass
        (0.929, 0.80, 200.0, "**NOT MET**"),
        (0.950, 0.749, 200.0, "**NOT MET**"),
        (0.950, 0.80, 301.0, "**NOT MET**"),
    ],
)
def test_adapter_target_needs_accuracy_map_and_time(knn1, map_at_r, seconds, verdict):
    rows = rep.targets([_adapter_supcon(knn1, map_at_r, seconds)], "default", [])
    assert rows[0]["verdict"] == verdict
    assert f"{100 * knn1:.2f} %" in rows[0]["measured"]


def test_adapter_target_is_not_met_when_its_time_was_not_measured():
    rows = rep.targets([_adapter_supcon(0.95, 0.80, None)], "default", [])
    assert rows[0]["verdict"] == "**NOT MET**"
    assert "end-to-end time not measured" in rows[0]["measured"]


def test_finetune_targets_take_the_better_of_knn_and_linear_and_say_why_missing():
    ft10 = record("train_10", "finetune", "supcon", 0, 0.870, linear=0.881)
    skipped = [{"split": "train_10", "mode": "finetune", "config": "supcon", "seed": 0,
                "reason": "predicted 12.0 min, 3.0 min left"}]  # fmt: skip
    rows = rep.targets([ft10], "default", [])
    assert rows[1]["verdict"] == rep.NOT_IN_DEFAULT  # full-data finetune: not in default
    assert rows[2]["verdict"] == "**MET**"  # linear 88.1 >= 88
    low = record("train_10", "finetune", "supcon", 0, 0.870, linear=0.879)
    assert rep.targets([low], "default", [])[2]["verdict"] == "**NOT MET**"
    missing = rep.targets([], "default", skipped)
    assert missing[0]["verdict"] == "not run"
    assert "skipped to keep the time budget" in missing[2]["verdict"]
    assert "3.0 min left" in missing[2]["verdict"]
    assert rep.targets([], "full", [])[1]["verdict"] == "not run"
    ft_full = record("train", "finetune", "supcon", 0, 0.941, linear=0.93)
    assert rep.targets([ft_full], "full", [])[1]["verdict"] == "**MET**"


# ----------------------------------------------------------------------------- claims, advice


def _claim_records():
    recs = []
    for s in range(3):
        recs.append(record("train_10", "adapter", "hscl (beta=0, SCL)", s, 0.80 + 0.01 * s))
        recs.append(record("train_10", "adapter", "hscl (beta=1)", s, 0.86 + 0.01 * s))
        recs.append(record("train_10", "adapter", "supcon", s, 0.84 + 0.01 * s, map_at_r=0.6))
        recs.append(
            record("train_10", "adapter", "supcon (hardness=0)", s, 0.835 + 0.01 * s, map_at_r=0.59)
        )
        recs.append(record("train_10", "adapter", "supcon (hardness=1)", s, 0.80 + 0.01 * s))
        recs.append(record("train_10", "adapter", "ce", s, 0.83, map_at_r=0.4))
    return recs


def test_claim_rows_and_summary_count_verdicts():
    rows = rep.claim_rows(_claim_records())
    pairs = {(r["base"], r["tilted"]): r for r in rows}
    assert set(pairs) == {("hscl (beta=0, SCL)", "hscl (beta=1)"),
                          ("supcon (hardness=0)", "supcon (hardness=1)")}  # fmt: skip
    up = pairs[("hscl (beta=0, SCL)", "hscl (beta=1)")]["cells"]["knn1_accuracy"]
    assert up["diff"] == pytest.approx(6.0) and up["verdict"] == "better"
    down = pairs[("supcon (hardness=0)", "supcon (hardness=1)")]["cells"]["knn1_accuracy"]
    assert down["diff"] == pytest.approx(-3.5) and down["verdict"] == "worse"
    summary = rep.claim_summary(rows)
    # kNN-1 and linear move together in the fake data; MAP@R: hscl equal, supcon 0.59 -> 0.5
    assert "better by more than the seed spread in 2" in summary
    assert "worse by more than the seed spread in 3" in summary
    table = "\n".join(rep.claim_table(rows))
    assert "+6.00 (> 1.00)" in table and "-3.50 (> 1.00)" in table


def test_what_to_use_picks_the_best_method_from_the_numbers():
    recs = _claim_records()
    advice = "\n".join(rep.what_to_use(recs, rep.claim_rows(recs), None))
    assert "hscl (beta=1) had the highest kNN-1 (87.00 %)" in advice
    assert "ahead of supcon (85.00 %)" in advice
    assert "best contrastive loss's MAP@R (supcon, 0.600) was above cross-entropy's (0.400)" in (
        advice
    )
    fashion = {"budget_minutes": 1.0, "runs": [
        {"name": "supcon", "minutes": 1.0, "knn1": 0.90}, {"name": "ce", "minutes": 1.0,
                                                           "knn1": 0.91}]}  # fmt: skip
    assert "supcon not ahead" in "\n".join(rep.what_to_use(recs, [], fashion))


# ----------------------------------------------------------------------------- sections


OTHER = "<!-- losses:begin -->\nLOSS TABLE\n<!-- losses:end -->\n\n<!-- fashion-mnist:begin -->\nFM\n<!-- fashion-mnist:end -->\n"  # fmt: skip


def test_replace_section_keeps_everything_outside_its_markers():
    doc = "# contrastkit benchmarks\n\n" + OTHER
    added = markdown.replace_section(doc, "<!-- a:begin -->", "<!-- a:end -->", "first")
    assert added.startswith(doc.rstrip("\n")) and added.endswith("<!-- a:end -->\n")
    again = markdown.replace_section(added, "<!-- a:begin -->", "<!-- a:end -->", "second\n")
    assert "first" not in again and "<!-- a:begin -->\nsecond\n<!-- a:end -->" in again
    assert again.replace("second", "first") == added
    top = markdown.replace_section(again, "<!-- s:begin -->", "<!-- s:end -->", "S", top=True)
    assert top.startswith("# contrastkit benchmarks\n\n<!-- s:begin -->\nS\n<!-- s:end -->\n\n")
    assert OTHER.strip() in top and top.count("<!-- a:begin -->") == 1


def test_write_section_accepts_a_section_with_or_without_its_markers(tmp_path):
    out, begin, end = tmp_path / "B.md", "<!-- a:begin -->", "<!-- a:end -->"
    markdown.write_section(out, f"{begin}\n## A\none\n{end}\n", begin, end)
    assert out.read_text() == f"{markdown.NEW_DOCUMENT}\n{begin}\n## A\none\n{end}\n"
    out.write_text(out.read_text() + "\nkept\n")
    markdown.write_section(out, "## A\ntwo", begin, end)
    text = out.read_text()
    assert "one" not in text and f"{begin}\n## A\ntwo\n{end}" in text and text.endswith("kept\n")
    assert text.count(begin) == 1


@pytest.mark.parametrize("script", ["losses.py", "self_supervised.py", "finetune_gpu.py"])
def test_scripts_run_from_any_directory(tmp_path, script):
    """The documented commands run the scripts by path, not as modules."""
    path = Path(__file__).resolve().parents[2] / "benchmarks" / script
    done = subprocess.run([sys.executable, str(path), "--help"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "usage" in done.stdout


def test_plan_profiles_hold_the_promised_runs():
    main, finetune = b77.plan("default")
    adapter = [s for s in main if s.mode == "adapter"]
    claims = len(b77.CLAIM_CONFIGS)
    assert len(adapter) == len(b77.CONFIGS) * (3 + 3 + 1) + 2 * claims
    for config in b77.CONFIGS:
        seeds = {s.seed for s in adapter if s.split == "train" and s.config == config}
        assert seeds == ({0, 1, 2} if config in b77.CLAIM_CONFIGS else {0}), config
    assert finetune[0] == b77.RunSpec("train_5", "finetune", "supcon", 0)
    assert {s.split for s in finetune} == {"train_5", "train_10"} and len(finetune) == 6
    full_main, full_ft = b77.plan("full")
    assert all({s.seed for s in full_main if s.mode == "adapter" and s.split == sp} == {0, 1, 2}
               for sp in b77.SPLITS)  # fmt: skip
    assert sorted(s.config for s in full_ft if s.split == "train") == sorted(b77.FINETUNE_CONFIGS)
    with pytest.raises(ValueError, match="profile"):
        b77.plan("fast")


def test_run_all_skips_what_the_budget_cannot_hold_and_reuses_records(tmp_path, monkeypatch):
    calls = []

    def fake_run(spec, data, quick, encode_s):
        calls.append(spec)
        return record(spec.split, spec.mode, spec.config, spec.seed, 0.8, quick=quick,
                      fit_s=30.0, steps=10)  # fmt: skip  # 3 s per step

    monkeypatch.setattr(b77, "run_one", fake_run)
    monkeypatch.setattr(b77, "steps_of", lambda spec, data: 100)
    specs = [b77.RunSpec("train_5", "finetune", c, 0) for c in ("supcon", "ce")]
    jsonl = tmp_path / "runs.jsonl"
    # the first run: 100 steps at the prior 1.4 s + 30 s = 170 s < 200 s left; the second: 3 s
    # per step measured, 300 s > what is left
    records, skipped = b77.run_all(specs, None, quick=False, jsonl=jsonl, reuse=False,
                                   encode_s={}, deadline=time.perf_counter() + 200,
                                   step_s_prior=1.4, log=lambda _: None)  # fmt: skip
    assert [r["config"] for r in records] == ["supcon"] and len(calls) == 1
    assert skipped[0]["config"] == "ce" and "min left" in skipped[0]["reason"]
    with jsonl.open("a") as f:
        f.write('{"torn": ')  # a run killed mid-write
    assert len(b77.read_records(jsonl)) == 1
    again, _ = b77.run_all(specs[:1], None, quick=False, jsonl=jsonl, reuse=True, encode_s={},
                           log=lambda _: None)  # fmt: skip
    assert len(calls) == 1 and again[0]["config"] == "supcon"  # reused, not run


def test_diagnostics_batches_and_bounds():
    import numpy as np

    rng = np.random.default_rng(0)
    Z = rng.normal(size=(1100, 16)).astype(np.float32)
    y = rng.integers(0, 7, size=1100)
    d = b77.diagnostics(Z, y, seed=0)
    assert d["batches"] == 1100 // b77.DIAGNOSTIC_BATCH and 0 <= d["held"] <= d["batches"]
    assert all(np.isfinite(d[k]) and d[k] > 0 for k in ("ucl", "hucl", "scl", "hscl"))
    assert b77.diagnostics(Z, y, seed=0) == d  # seeded


@pytest.mark.skipif(not DATA.is_dir(), reason="Banking77 is missing at ../shared/data/banking77")
def test_whole_report_from_records_leaves_other_sections_intact(tmp_path):
    """main() with --reuse on a JSONL holding every quick run: no training, every section."""
    quality = pytest.importorskip("benchmarks.quality")
    main_specs, finetune = b77.plan("quick")
    lines = []
    for spec in [*main_specs, *finetune]:
        good = spec.config == "hscl (beta=1)" or spec.mode == "finetune"
        lines.append(record(spec.split, spec.mode, spec.config, spec.seed, 0.95 if good else 0.90,
                            map_at_r=0.8, quick=True, end_to_end_s=100.0, encode_s=5.0))  # fmt: skip
    jsonl = tmp_path / "q.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in lines))
    out = tmp_path / "B.md"
    out.write_text("# contrastkit benchmarks\n\n" + OTHER)
    code = quality.main(["--quick", "--reuse", "--out", str(out), "--figures",
                         str(tmp_path / "fig"), "--jsonl", str(jsonl), "--skip",
                         "losses,fashion"])  # fmt: skip
    text = out.read_text()
    assert code == 0
    assert OTHER.strip() in text  # other sections untouched
    for name in quality.MARKERS:
        begin, end = quality.MARKERS[name]
        assert text.count(begin) == 1 and text.count(end) == 1
    assert text.index("quality-summary:begin") < text.index("losses:begin")
    assert "| full | adapter | supcon | 1 | 90.00 | 90.00 | 0.800 |" in text
    assert "kNN-1 90.00 %, MAP@R 0.800, 100 s end to end (1 seed) | **NOT MET** |" in text
    assert "finetune, supcon, defaults, 10-shot" in text and "not run |" in text
    assert "hscl (beta=1) had the highest kNN-1 (95.00 %)" in text
    assert "not run: --skip losses" in text
    assert (tmp_path / "fig" / "banking77_quality.png").stat().st_size > 10_000
    assert (tmp_path / "fig" / "hscl_claim.png").is_file()
    assert "](fig/banking77_quality.png)" in text


def test_inequality_sentence_counts_batches_and_names_where_it_held():
    records = [
        record("train", "adapter", "supcon", 0, 0.9),
        record("train", "adapter", "ce", 1, 0.9),
    ]
    assert rep.inequality_sentence(records).startswith(
        "The paper's inequality H-SCL <= H-UCL failed in every batch: 0 of 6 batches"
    )
    held = record("train_10", "adapter", "triplet (batch_hard)", 0, 0.8)
    held["diagnostics"] = dict(held["diagnostics"], held=5)
    sentence = rep.inequality_sentence([*records, held])
    assert "held in some batches and not in others: 5 of 12 batches" in sentence
    assert sentence.endswith("It held in: 10-shot adapter triplet (batch_hard) (5 of 6).")
    assert rep.inequality_sentence([]) == "No diagnostics were computed."


def test_solo_step_seconds_scales_runs_that_shared_the_cores():
    shared = {"fit_s": 300.0, "steps": 3000, "threads": 1}  # 0.1 s a step on 1 of 2 threads
    alone = {"fit_s": 120.0, "steps": 3000, "threads": 2}  # 0.04 s a step on both
    assert b77.solo_step_seconds([shared], threads=2) == pytest.approx(0.05)
    assert b77.solo_step_seconds([shared, alone], threads=2) == pytest.approx(0.05)
    assert b77.solo_step_seconds([alone], threads=2) == pytest.approx(0.04)
    assert b77.solo_step_seconds([{"fit_s": 10.0, "steps": 100}], threads=2) == pytest.approx(0.1)
    assert b77.solo_step_seconds([], threads=2) == 0.1  # nothing measured: the default


def test_finetune_table_names_each_device_and_leaves_out_tuning_runs(tmp_path):
    from benchmarks import finetune_gpu

    now = finetune_gpu.default_epochs("train")

    def record(split, knn1, gpu, epochs=now, **extra):
        return dict(split=split, method="supcon", seed=0, extra={}, knn1=knn1, linear=0.5,
                    fit_s=1500.0, plan=f"Plan(batch_size=64, epochs={epochs}, lr=3e-05)",
                    gpu=gpu, **extra)  # fmt: skip

    records = [
        record("train", 0.9412, "NVIDIA H200"),
        record("train", 0.9301, "none (CPU)", threads=1, scored_on="test"),
        record("train", 0.9500, "NVIDIA H200", epochs=now + 3),  # another plan: not judged
        record("train_10", 0.99, "NVIDIA H200", scored_on="valid"),  # tuning: not in the table
    ]
    jsonl = tmp_path / "r.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in records))
    table = finetune_gpu.render(jsonl)
    assert (
        f"| train | supcon | {now} | NVIDIA H200 | 1 | 94.12 | 50.00 | 25 min | MET (>= 94 %) |"
        in table
    )
    assert (
        f"| train | supcon | {now} | CPU, 1 thread(s) | 1 | 93.01 | 50.00 | 25 min | NOT MET"
        in table
    )
    assert (
        f"| train | supcon | {now + 3} | NVIDIA H200 | 1 | 95.00 | 50.00 | 25 min | other plan |"
        in table
    )
    assert "99.00" not in table and "| train_10 |" not in table
