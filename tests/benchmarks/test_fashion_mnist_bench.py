"""The Fashion-MNIST benchmark: a quick run end to end, and the section's verdicts computed
from the figures it is given (fake results with known answers)."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / ".." / "shared" / "data" / "fashion-mnist" / "fashion-mnist.npz"
sys.path.insert(0, str(ROOT))

fm = pytest.importorskip("benchmarks.fashion_mnist")
DEFAULT_VIEWS = pytest.importorskip("contrastkit.config.defaults").DEFAULT_VIEWS


def _run(name: str, seed: int, knn1: float, minutes: float = 3.0, fit_s: float = 170.0) -> dict:
    return {"name": name, "method": fm.CONFIGS[name][0], "options": fm.CONFIGS[name][1],
            "minutes": minutes, "seed": seed, "knn1": knn1, "knn10": knn1, "linear": knn1,
            "rows": 60000, "epochs": 4, "steps": 940, "batch_size": 256,
            "images_seen": 481280, "step_s": 0.18, "fit_s": fit_s,
            "images_per_s": 481280 / fit_s, "eval_s": 20.0}  # fmt: skip


def _fake(supcon=0.93, ce=0.91, fit_s=170.0) -> dict:
    runs = [
        _run("ce", 0, ce),
        _run("supcon", 0, supcon, fit_s=fit_s),
        _run("hscl (beta=1)", 0, 0.9),
    ]
    # claim: beta=1 is 1.00 point above beta=0 with seed std 0.1 (clearly more than the spread);
    # hardness is 0.05 points above none with seed std 1.00 / 1.24 (within the spread).
    for seed, (b0, b1, h0, h1) in enumerate([(0.900, 0.910, 0.900, 0.905), (0.901, 0.911, 0.910, 0.910),
                                             (0.899, 0.909, 0.890, 0.8865)]):  # fmt: skip
        runs += [_run("hscl (beta=0, SCL)", seed, b0, 1.5), _run("hscl (beta=1)", seed, b1, 1.5),
                 _run("supcon", seed, h0, 1.5), _run(f"supcon (hardness={fm.HARDNESS:g})", seed,
                                                      h1, 1.5)]  # fmt: skip
    return {"quick": False, "budget_minutes": 3.0, "seeds": [0], "claim_minutes": 1.5,
            "claim_seeds": [0, 1, 2], "n_train": 60000, "n_test": 10000, "probe_rows": 10000,
            "baselines": [{"name": "raw pixels (standardised)", "knn1": 0.85, "knn10": 0.86,
                           "linear": 0.84, "eval_s": 1.0}],
            "runs": runs, "machine": "test CPU", "load_average": {"start": "0", "end": "0"},
            "date": "2026-01-01", "wall_s": 600.0}  # fmt: skip


def test_target_met_only_when_every_condition_holds():
    assert fm.target_verdict(_fake())[0] is True
    assert "**MET**" in fm.section(_fake(), figure=None)
    assert fm.target_verdict(_fake(supcon=0.9199))[0] is False  # below 92 %
    assert fm.target_verdict(_fake(supcon=0.93, ce=0.94))[0] is False  # ce better
    assert fm.target_verdict(_fake(supcon=0.93, ce=0.93))[0] is False  # a tie is not "above"
    assert fm.target_verdict(_fake(fit_s=601.0))[0] is False  # over 10 minutes
    # below the target's budget a miss is "not reached" there, not a verdict on the target
    short = fm.section(_fake(supcon=0.9), figure=None)
    assert "**NOT MET**" not in short and "not reached in 3 min a run" in short
    at_target = _fake(supcon=0.9)
    at_target["budget_minutes"] = fm.TARGET_MINUTES
    for run in at_target["runs"]:
        run["minutes"] = fm.TARGET_MINUTES if run["minutes"] == 3.0 else run["minutes"]
    assert "**NOT MET**: supcon kNN-1 90.00 % < 92 %" in fm.section(at_target, figure=None)
    missing = _fake()
    missing["runs"] = [r for r in missing["runs"] if r["name"] != "ce"]
    assert fm.target_verdict(missing)[0] is None


def test_claim_lines_compare_the_difference_with_the_seed_spread():
    lines = fm.claim_lines(_fake())
    assert len(lines) == 2
    beta, hardness = lines
    assert "+1.00 points" in beta and "seed std 0.10 / 0.10" in beta
    assert "better by more than the seed spread" in beta
    assert "+0.05 points" in hardness and "seed std 1.00 / 1.24" in hardness
    assert "within the seed spread" in hardness


def test_section_table_uses_mean_and_std_over_seeds(tmp_path):
    text = fm.section(_fake(), figure=tmp_path / "fig.png")
    assert text.startswith(fm.BEGIN) and text.rstrip().endswith(fm.END)
    # supcon at 1.5 min over seeds 0.900, 0.910, 0.890: mean 90.00, sample std 1.00
    assert "| supcon, 1.5 min | 90.00 ± 1.00 |" in text
    assert "| supcon, 3 min | 93.00 |" in text  # one seed: no ± part
    assert (
        f"![Fashion-MNIST accuracy per configuration]({(tmp_path / 'fig.png').as_posix()})" in text
    )
    assert (tmp_path / "fig.png").stat().st_size > 1000


def test_section_names_the_command_that_trains_its_runs_again(tmp_path):
    results = _fake()
    expected = ("python -m benchmarks.fashion_mnist --minutes 3 --seeds 0 --claim-minutes 1.5 "
                "--claim-seeds 0,1,2 --out BENCHMARKS.md")  # fmt: skip
    assert fm.command(results) == expected
    assert f"Command: `{expected}`." in fm.section(results, figure=None)
    results["runs"] = [r for r in results["runs"] if r["name"] in ("ce", "supcon")]
    results.update(budget_minutes=10.0, claim_minutes=10.0, claim_seeds=[0])
    assert fm.command(results) == (
        "python -m benchmarks.fashion_mnist --minutes 10 --seeds 0 --configs 'ce,supcon' "
        "--out BENCHMARKS.md"
    )


def test_render_writes_the_section_of_saved_results_without_training(tmp_path):
    saved, out = tmp_path / "r.json", tmp_path / "B.md"
    saved.write_text(json.dumps(_fake()))
    figure = tmp_path / "fig.png"
    assert fm.main(["--render", str(saved), "--out", str(out), "--figure", str(figure)]) == 0
    assert figure.stat().st_size > 1000
    text = out.read_text()
    assert text.count(fm.BEGIN) == 1 and "| supcon, 3 min | 93.00 |" in text


def test_write_section_replaces_between_markers_and_appends_when_absent(tmp_path):
    out = tmp_path / "B.md"
    out.write_text("# title\n\nkept\n")
    fm.write_section(out, f"{fm.BEGIN}\nfirst\n{fm.END}\n")
    fm.write_section(out, f"{fm.BEGIN}\nsecond\n{fm.END}\n")
    text = out.read_text()
    assert text.count(fm.BEGIN) == 1 and "second" in text and "first" not in text
    assert text.startswith("# title\n\nkept\n")


def test_bad_arguments_raise_value_errors():
    with pytest.raises(ValueError, match="budget_minutes"):
        fm.run(0, [0])
    with pytest.raises(ValueError, match="seeds"):
        fm.run(1, [])
    with pytest.raises(ValueError, match="unknown configs"):
        fm.run(1, [0], configs=["supcon", "nope"])


@pytest.mark.skipif(not DATA.is_file(), reason=f"Fashion-MNIST is missing at {DATA}")
def test_quick_run_end_to_end(tmp_path):
    results = fm.run(0.005, [0], quick=True, configs=["ce", "supcon"])
    assert [b["name"] for b in results["baselines"]] == ["raw pixels (standardised)",
                                                         "random-init CNN"]  # fmt: skip
    assert [r["name"] for r in results["runs"]] == ["ce", "supcon"]  # supcon trained once
    for r in results["runs"]:
        assert all(0.0 <= r[k] <= 1.0 for k in ("knn1", "knn10", "linear"))
        assert r["steps"] >= 1 and r["epochs"] >= 1
        if r["method"] == "ce":  # one view of each row, a partial last batch
            assert r["images_seen"] == r["epochs"] * r["rows"]
        else:  # the default number of views of each row, in full batches
            views = r["options"].get("views") or DEFAULT_VIEWS
            assert r["images_seen"] == views * r["steps"] * r["batch_size"]
    raw = results["baselines"][0]["knn1"]
    assert raw > 0.6  # raw-pixel kNN on Fashion-MNIST is far above chance even on 3000 rows
    text = fm.section(copy.deepcopy(results), figure=tmp_path / "f.png")
    assert "**Quick run**" in text and "| ce, 0.005 min |" in text
    verdict = fm.target_verdict(results)[1]
    assert verdict.startswith("**NOT MET**") or verdict.startswith("**MET**")
    assert f"{100 * results['runs'][1]['knn1']:.2f} %" in verdict  # the number it was given


def test_runs_at_the_target_budget_keep_a_section_of_their_own(tmp_path):
    short, long = _fake(), _fake()
    long["budget_minutes"] = fm.TARGET_MINUTES
    assert fm.markers(short) == (fm.BEGIN, fm.END)
    assert fm.markers(long) == (fm.TARGET_BEGIN, fm.TARGET_END)
    assert fm.default_figure(long) != fm.default_figure(short)
    out = tmp_path / "B.md"
    fm.write_section(out, fm.section(long, figure=None))
    fm.write_section(out, fm.section(short, figure=None))  # the bench's short runs, later
    text = out.read_text()
    assert text.count(fm.TARGET_BEGIN) == 1 and text.count(fm.BEGIN) == 1
    assert "at the target's budget (10 min a run)" in text
