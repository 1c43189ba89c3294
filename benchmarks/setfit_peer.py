"""SetFit beside contrastkit on Banking77: same base model, same seed, same machine.

    python -m benchmarks.setfit_peer run --split train_5 --minutes 60   # one SetFit run, time-boxed
    python -m benchmarks.setfit_peer render --out BENCHMARKS.md

SetFit (`pip install setfit`, a benchmark-only dependency) trains all-MiniLM-L6-v2 (the folder
contrastkit ships) with its default `TrainingArguments` (contrastive pairs by oversampling,
batch 16, one epoch, CosineSimilarityLoss, then a logistic-regression head); only the seed (the
same as contrastkit's) and the checkpoint folder (a temporary one) are set. Its wall time runs
from loading the model to the test predictions. A run that does not end within `--minutes`
is stopped; the record keeps the steps it made, the steps it planned and the time the whole
plan would take at its measured rate.

The contrastkit figures beside it come from `benchmarks/never_worse.py`'s records (the same
splits and seeds, end to end from loading the model with an empty embedding cache to the test
predictions).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.machine import cpu_model  # noqa: E402
from benchmarks.markdown import write_section  # noqa: E402
from benchmarks.never_worse import LABELS, SIZES, load  # noqa: E402
from benchmarks.quality_banking77 import DATA, append_record, read_records  # noqa: E402

JSONL = ROOT / "benchmarks" / "results" / "setfit_peer.jsonl"
MARKERS = ("<!-- setfit-peer:begin -->", "<!-- setfit-peer:end -->")
SETFIT_BATCH = 16  # SetFit's default embedding batch size
SPEEDUP_TARGET = 3.0


def planned_steps(labels) -> int:
    """Optimiser steps SetFit's defaults plan for these labels: every pair of rows once
    (`sampling_strategy="oversampling"`: the positive pairs repeated until as many as the
    negative ones, or the other way round), one epoch of batches of 16 pairs."""
    counts = np.unique(np.asarray(labels), return_counts=True)[1].astype(np.int64)
    n = int(counts.sum())
    positive = int((counts * (counts - 1) // 2).sum())
    negative = n * (n - 1) // 2 - positive
    return math.ceil(2 * max(positive, negative) / SETFIT_BATCH)


def _setfit_child(texts, labels, test_texts, seed: int, progress, result) -> None:
    """SetFit with its defaults, in a child process (so a time-boxed run can be stopped)."""
    import torch
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments
    from transformers import TrainerCallback

    from contrastkit.models.text import resolve_text_model

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))

    class Progress(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            progress.value = state.global_step

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        model = SetFitModel.from_pretrained(resolve_text_model(None))
        args = TrainingArguments(seed=seed, output_dir=out)
        data = Dataset.from_dict({"text": list(texts), "label": list(labels)})
        trainer = Trainer(model=model, args=args, train_dataset=data, callbacks=[Progress()])
        trainer.train()
        predicted = np.asarray(model.predict(list(test_texts)))
    result["predicted"] = predicted.tolist()
    result["wall_s"] = time.perf_counter() - started


def run_setfit(split: str, seed: int, minutes: float) -> dict:
    """One time-boxed SetFit run on `split`, scored on test.csv: its JSONL record."""
    import setfit

    data = load()
    train, test = data[split], data["test"]
    classes = {c: i for i, c in enumerate(sorted(set(train.labels)))}
    codes = [classes[c] for c in train.labels]
    record = {
        "split": split,
        "seed": seed,
        "system": "setfit",
        "setfit_version": setfit.__version__,
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": cpu_model(),
        "threads": int(os.environ.get("OMP_NUM_THREADS", "0")) or os.cpu_count(),
        "load_at_start": os.getloadavg(),
        "minutes_allowed": minutes,
        "planned_steps": planned_steps(codes),
        "train_rows": len(codes),
    }
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        progress, result = context.Value("l", 0), manager.dict()
        args = (train.texts, codes, test.texts, seed, progress, result)
        child = context.Process(target=_setfit_child, args=args)
        started = time.perf_counter()
        child.start()
        child.join(timeout=60 * minutes)
        elapsed = time.perf_counter() - started
        if child.is_alive():
            child.terminate()
            child.join()
        record.update(
            steps_done=int(progress.value), elapsed_s=elapsed, finished="wall_s" in result
        )
        if record["finished"]:
            names = {i: c for c, i in classes.items()}
            predicted = np.array([names[int(p)] for p in result["predicted"]], dtype=object)
            record["accuracy"] = float((predicted == test.labels).mean())
            record["wall_s"] = result["wall_s"]
        elif record["steps_done"]:
            per_step = elapsed / record["steps_done"]
            record["estimated_total_s"] = per_step * record["planned_steps"]
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # the SetFit child, waited for
    record.update(cpu_s=usage.ru_utime + usage.ru_stime, load_at_end=os.getloadavg())
    return record


def largest_rows_within(per_step_s: float, minutes: float = 60.0, n_classes: int = 77) -> int:
    """Rows a class (balanced classes) whose planned SetFit steps fit in `minutes` at
    `per_step_s` seconds a step."""
    k = 1
    while True:
        labels = np.repeat(np.arange(n_classes), k + 1)
        if planned_steps(labels) * per_step_s > 60 * minutes:
            return k
        k += 1


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def _ours(records: list[dict], split: str, mode: str) -> dict | None:
    """contrastkit's seed-0 record of `mode` on `split` (never_worse.py's JSONL)."""
    for r in records:
        if r["split"] == split and r["mode"] == mode and r["seed"] == 0 and not r.get("quick"):
            return r
    return None


def section(setfit_records: list[dict], ours: list[dict], command: str) -> str:
    lines = [
        "## SetFit beside contrastkit (Banking77, all-MiniLM-L6-v2, CPU)",
        "",
        "SetFit 1.x with its default `TrainingArguments` (pairs by oversampling, batch 16, one "
        "epoch, cosine-similarity loss, logistic-regression head), seed 0, the base model "
        "contrastkit ships; contrastkit with its defaults, seed 0, from `benchmarks/"
        "never_worse.py`. Accuracy on test.csv (3080 rows); wall time end to end on one thread "
        "of the same 2-core machine (model load, encoding with an empty cache, training, test "
        "predictions). contrastkit's accuracy is the linear probe (a logistic regression on "
        "the refined embeddings, as SetFit's head) and kNN-1.",
        "",
        "| split | system | accuracy % | wall time | speed-up | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for split in SIZES:
        peer = next((r for r in setfit_records if r["split"] == split), None)
        if peer is None:
            continue
        label = LABELS[split]
        if peer["finished"]:
            acc, wall = f"{100 * peer['accuracy']:.2f}", _duration(peer["wall_s"])
        else:
            acc = "did not finish"
            wall = (
                f"stopped after {_duration(peer['elapsed_s'])} at step {peer['steps_done']:,} of "
                f"{peer['planned_steps']:,} (whole plan: ~{_duration(peer.get('estimated_total_s'))})"
            )
        lines.append(f"| {label} | SetFit (defaults) | {acc} | {wall} | 1x | - |")
        for mode in ("adapter", "finetune"):
            r = _ours(ours, split, mode)
            if r is None:
                continue
            m, seconds = r["metrics"], r["end_to_end_s"]
            ref = peer["wall_s"] if peer["finished"] else peer["elapsed_s"]
            speed = f"{ref / seconds:.0f}x" + ("" if peer["finished"] else " or more")
            verdict = _verdict(peer, m, ref / seconds)
            lines.append(
                f"| {label} | contrastkit {mode} | {100 * m['linear_accuracy']:.2f} (kNN-1 "
                f"{100 * m['knn1_accuracy']:.2f}) | {_duration(seconds)} | {speed} | {verdict} |"
            )
    lines += ["", *_notes(setfit_records), "", f"Command: `{command}`."]
    return "\n".join(lines)


def _verdict(peer: dict, metrics: dict, speedup: float) -> str:
    fast = speedup >= SPEEDUP_TARGET
    if not peer["finished"]:
        return f"{'faster' if fast else 'NOT 3x faster'}; SetFit gave no accuracy"
    best = max(metrics["linear_accuracy"], metrics["knn1_accuracy"])
    accurate = metrics["linear_accuracy"] >= peer["accuracy"]
    if accurate and fast:
        return "**MET**"
    if not accurate and best >= peer["accuracy"]:
        return "linear below, kNN-1 at or above" + ("" if fast else "; NOT 3x faster")
    return "**NOT MET**" + (" (accuracy)" if fast else "")


def _notes(records: list[dict]) -> list[str]:
    notes = []
    for r in records:
        label = LABELS[r["split"]]
        notes.append(
            f"- {label}: SetFit planned {r['planned_steps']:,} steps for {r['train_rows']:,} rows; "
            f"load average {' / '.join(f'{v:.1f}' for v in r['load_at_start'])} at the start "
            f"({r['machine']}, {r['threads']} thread(s), setfit {r['setfit_version']})."
        )
    finished = [r for r in records if r["finished"]]
    if finished:
        per_step = max(r["wall_s"] / r["planned_steps"] for r in finished)
        k = largest_rows_within(per_step)
        notes.append(
            f"- At the slowest measured rate ({per_step:.2f} s a step, training and "
            f"overheads together) SetFit's default plan for 77 balanced classes fits in 60 "
            f"minutes up to {k} rows a class ({77 * k} rows); the full train split ("
            f"{planned_steps(np.repeat(np.arange(77), 130)):,} steps for 130 rows a class) "
            "would take days, and its pair list alone (50 million pairs held in memory) is "
            "beyond this machine."
        )
    return notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=["run", "render"])
    parser.add_argument("--split", choices=SIZES, default="train_5")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--minutes", type=float, default=60.0, help="time box of a SetFit run")
    parser.add_argument("--jsonl", type=Path, default=JSONL)
    parser.add_argument("--ours", type=Path,
                        default=ROOT / "benchmarks" / "results" / "never_worse.jsonl")  # fmt: skip
    parser.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    args = parser.parse_args(argv)
    if args.action == "run":
        if not (DATA / "test.csv").is_file():
            print(f"{DATA} is missing: this benchmark needs ../shared/data/banking77")
            return 2
        record = run_setfit(args.split, args.seed, args.minutes)
        print(json.dumps(record), flush=True)
        append_record(args.jsonl, record)
        return 0
    records = read_records(args.jsonl)
    command = "python -m benchmarks.setfit_peer run --split SPLIT --minutes 60; ... render"
    write_section(args.out, section(records, read_records(args.ours), command), *MARKERS)
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
