"""benchmarks/semi.py: the unlabelled pool never holds a test (or, for tuning, a valid) text,
and the table reads a run's stage-2 scores as the labelled-only row."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
semi = pytest.importorskip("benchmarks.semi")
report = pytest.importorskip("benchmarks.semi_report")

SPLITS = {
    "train": ["Card lost?", "card lost", "new pin", "top up failed", "fee charged", "hello"],
    "train_10": ["new pin"],
    "test": ["Card  lost!", "unrelated test text"],
    "valid": ["fee charged"],
}


@pytest.fixture
def fake_data(monkeypatch):
    monkeypatch.setattr(semi, "load", lambda name: (SPLITS[name], np.zeros(len(SPLITS[name]))))


def test_the_pool_leaves_out_labelled_test_and_valid_texts(fake_data):
    assert semi.unlabelled_pool("train_10", "tuning") == ["top up failed", "hello"]
    assert semi.unlabelled_pool("train_10", "full") == ["top up failed", "fee charged", "hello"]


def test_the_table_takes_stage_two_as_the_labelled_only_row():
    run = {"split": "train_10", "mode": "finetune", "config": "pl", "seed": 0, "n_unlabelled": 9,
           "wall_s": 60.0, "cpu_s": 90.0, "load": [1.0, 1.0, 1.0], "rows": {"pseudo_labelled": 7},
           "stages": {"supervised": {"valid": [0.5, 0.4], "test": [0.6, 0.3]},
                      "final": {"valid": [0.7, 0.8], "test": [0.9, 0.1]}}}  # fmt: skip
    rows = report.table([run]).splitlines()[2:]
    assert len(rows) == 2
    only = next(r for r in rows if "labelled-only" in r)
    assert "| 50.00 | 40.00 | 60.00 | 30.00 |" in only and "stage 2 of a run" in only
    pl = next(r for r in rows if "| pl |" in r)
    assert "| 70.00 | 80.00 | 90.00 | 10.00 | 9 | 7 | 1.0 / 1.5 min |" in pl


def test_a_finetune_run_adds_its_adapter_stage_as_a_labelled_only_row():
    run = {"split": "train_5", "mode": "finetune", "config": "pl", "seed": 1, "n_unlabelled": 9,
           "wall_s": 60.0, "cpu_s": 90.0, "load": [1.0, 1.0, 1.0], "rows": {"pseudo_labelled": 7},
           "stages": {"supervised": {"valid": [0.5, 0.4], "test": [0.6, 0.3]},
                      "adapter": {"valid": [0.55, 0.45], "test": [0.65, 0.35]},
                      "final": {"valid": [0.7, 0.8], "test": [0.9, 0.1]}}}  # fmt: skip
    rows = report.table([run]).splitlines()[2:]
    assert len(rows) == 3
    stage3 = next(r for r in rows if "labelled-only + adapter" in r)
    assert "(stage 3 of a run) | 1 (1) | 55.00 | 45.00 | 65.00 | 35.00 | 0 |" in stage3


def test_a_full_pool_run_is_a_row_of_its_own():
    base = {"split": "train_10", "mode": "finetune", "config": "pl", "seed": 0, "n_unlabelled": 9,
            "wall_s": 60.0, "cpu_s": 90.0, "load": [1.0, 1.0, 1.0], "rows": {"pseudo_labelled": 7},
            "pool": "tuning", "stages": {"final": {"valid": [0.7, 0.8], "test": [0.9, 0.1]}}}  # fmt: skip
    full = {**base, "pool": "full", "n_unlabelled": 12,
            "stages": {"final": {"valid": [0.6, 0.6], "test": [0.5, 0.5]}}}  # fmt: skip
    rows = report.table([base, full]).splitlines()[2:]
    assert len(rows) == 2
    assert "| pl | 1 (0) | 70.00 |" in next(r for r in rows if "| pl |" in r)
    assert "| 50.00 | 50.00 | 12 |" in next(r for r in rows if "pl, full pool" in r)
