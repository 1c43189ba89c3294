"""The search benchmark's Markdown and model naming, on fake records with known answers (no
searching, no training)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

report = pytest.importorskip("benchmarks.search_report")
quality = pytest.importorskip("benchmarks.search_quality")

MACHINE = {"cpu": "AMD EPYC", "cores": 2, "threads": "2", "date": "2026-12-04"}


def _dedup(seconds: float, gib: float, recall: float) -> dict:
    return {"bench": "dedup", "rows": 1_000_000, "threshold": 0.9, "seconds": seconds,
            "cpu_seconds": 300.0, "load_average": [9.0, 8.8, 7.8],
            "peak_rss_bytes": int(gib * 1024**3), "pairs": 10, "subset_rows": 100,
            "subset_exact_pairs": 5, "pair_recall": recall, "pair_precision": 1.0, **MACHINE}  # fmt: skip


def test_dedup_verdicts_are_per_target():
    text = "\n".join(report.dedup_section([_dedup(734, 3.08, 1.0)]))
    assert "wall time <= 600 s: 734 s, **not met**" in text
    assert "peak memory <= 4 GiB: 3.08 GiB, **met**" in text
    assert "pair recall >= 0.95: 1.0000, **met**" in text
    assert "0.41 cores on average" in text


def test_approx_target_uses_ivf_against_flat():
    rows = [{"bench": "approx", "rows": 1_000_000, "kind": kind, "build_seconds": 1.0,
             "seconds": seconds, "recall_at_10": recall, "nprobe": 4, "bytes_per_row": 1544.0,
             **MACHINE}
            for kind, seconds, recall in (("flat", 50.0, 1.0), ("ivf", 0.5, 0.96))]  # fmt: skip
    text = "\n".join(report.approx_section(rows))
    assert "100.0x, 0.9600: **met**" in text
    assert "| 1.438 |" in text  # GiB per million rows


def test_named_models_replace_their_path_named_records():
    old = {"bench": "mrpc", "model": "/runs/a/model", "threshold": 0.5, "average_precision": 0.8,
           "f1": 0.8, "precision": 0.8, "recall": 0.8, "accuracy": 0.8, **MACHINE}  # fmt: skip
    frozen = {**old, "model": "frozen"}
    new = {
        **old,
        "model": "A adapter",
        "model_path": "/runs/a/model",
        "made_by": "contrastkit refine",
    }
    new_frozen = {**old, "model": report.FROZEN}
    rows = report.latest([old, frozen, new, new_frozen], "mrpc", "model")
    assert [r["model"] for r in rows] == ["A adapter", report.FROZEN]
    text = "\n".join(report.quality_section([old, new]))
    assert "- A adapter: `contrastkit refine`" in text


def test_refine_command_is_rebuilt_from_the_run_folder(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "config.yaml").write_text(
        "data:\n  columns: {}\n  train:\n    path: /work/shared/data/b77/train.csv\n"
        "  test:\n    path: /work/shared/data/b77/test.csv\noptions:\n  mode: finetune\n"
    )
    model, name, made_by = quality.describe(f"B77 finetuned={tmp_path / 'model'}")
    assert (model, name) == (str(tmp_path / "model"), "B77 finetuned")
    assert made_by["made_by"] == (
        "contrastkit refine --train ../shared/data/b77/train.csv --test "
        f"../shared/data/b77/test.csv --mode finetune --out {tmp_path}"
    )
    assert quality.describe("frozen") == ("frozen", quality.FROZEN, {})
