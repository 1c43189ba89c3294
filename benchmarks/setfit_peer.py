"""SetFit beside contrastkit on Banking77: same base model, same seed, same machine.

    python -m benchmarks.setfit_peer run --split train_5 --minutes 60   # one SetFit run, time-boxed
    python -m benchmarks.setfit_peer render   # benchmarks/results/never_worse.md

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
from benchmarks.never_worse import LABELS, OUT, SIZES, load, newest  # noqa: E402
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

    class Progress(TrainerCallback):  # progress: [steps done, time.time() of the first]
        def on_step_end(self, args, state, control, **kwargs):
            progress[0] = state.global_step
            if state.global_step == 1:
                progress[1] = time.time()

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
        progress, result = context.Array("d", 2), manager.dict()
        args = (train.texts, codes, test.texts, seed, progress, result)
        child = context.Process(target=_setfit_child, args=args)
        started = time.time()
        child.start()
        child.join(timeout=60 * minutes)
        elapsed = time.time() - started
        if child.is_alive():
            child.terminate()
            child.join()
        record.update(steps_done=int(progress[0]), elapsed_s=elapsed, finished="wall_s" in result)
        if record["finished"]:
            names = {i: c for c, i in classes.items()}
            predicted = np.array([names[int(p)] for p in result["predicted"]], dtype=object)
            record["accuracy"] = float((predicted == test.labels).mean())
            record["wall_s"] = result["wall_s"]
        elif record["steps_done"] > 1:
            record.update(_estimate(record, progress[1] - started, elapsed))
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # the SetFit child, waited for
    record.update(cpu_s=usage.ru_utime + usage.ru_stime, load_at_end=os.getloadavg())
    return record


def _estimate(record: dict, first_step_s: float, elapsed_s: float) -> dict:
    """A stopped run's pace: setup (model load, pair list) up to its first step, seconds a
    step after it, and the whole plan's training at that pace (without the head's fit and
    the test predictions, so an underestimate)."""
    per_step = (elapsed_s - first_step_s) / (record["steps_done"] - 1)
    return {"setup_s": first_step_s, "per_step_s": per_step,
            "estimated_total_s": first_step_s + per_step * record["planned_steps"]}  # fmt: skip


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


def _load(record: dict) -> str:
    return f"{record['load_at_start'][0]:.1f}"


def _setfit_row(peer: dict, label: str) -> str:
    """SetFit's table row: its accuracy and time, or where a time-boxed run stopped."""
    cpu = f"{_duration(peer.get('cpu_s'))}"
    if peer["finished"]:
        acc, wall = f"{100 * peer['accuracy']:.2f}", _duration(peer["wall_s"])
    else:
        acc = f"not reached (stopped at step {peer['steps_done']:,} of {peer['planned_steps']:,})"
        wall = (f"stopped after {_duration(peer['elapsed_s'])}; whole plan "
                f"~{_duration(peer.get('estimated_total_s'))} at its rate")  # fmt: skip
        cpu += f" for {peer['steps_done']:,} steps"
    return f"| {label} | SetFit (defaults) | {acc} | {wall} | {cpu} | {_load(peer)} | - | - |"


def _speedups(peer: dict, ours: dict) -> tuple[float, float, str]:
    """(lower bound, estimate, text) of SetFit's wall time over contrastkit's end to end."""
    seconds = ours["end_to_end_s"]
    if peer["finished"]:
        ratio = peer["wall_s"] / seconds
        return ratio, ratio, f"{ratio:.0f}x"
    low, estimate = peer["elapsed_s"] / seconds, peer.get("estimated_total_s", 0.0) / seconds
    return low, estimate, f"~{estimate:.0f}x (at least {low:.2g}x measured)"


def _our_row(peer: dict, ours: dict, label: str, mode: str) -> str:
    m = ours["metrics"]
    low, estimate, speed = _speedups(peer, ours)
    accuracy = f"{100 * m['linear_accuracy']:.2f} (kNN-1 {100 * m['knn1_accuracy']:.2f})"
    cpu = _duration(ours.get("cpu_s"))
    return (f"| {label} | contrastkit {mode} | {accuracy} | {_duration(ours['end_to_end_s'])} | "
            f"{cpu} | {_load(ours)} | {speed} | {_verdict(peer, m, low, estimate)} |")  # fmt: skip


def section(setfit_records: list[dict], ours: list[dict], command: str) -> str:
    lines = [
        "## SetFit beside contrastkit (Banking77, all-MiniLM-L6-v2, CPU)",
        "",
        "SetFit 1.x with its default `TrainingArguments` (pairs by oversampling, batch 16, one "
        "epoch, cosine-similarity loss, logistic-regression head), seed 0, the base model "
        "contrastkit ships; contrastkit with its defaults, seed 0, from `benchmarks/"
        "never_worse.py`. Accuracy on test.csv (3080 rows): contrastkit's is the linear probe "
        "(a logistic regression on the refined embeddings, as SetFit's head), kNN-1 beside it. "
        "Times end to end (model load, encoding with an empty cache, training, test "
        "predictions), one torch thread, run one after the other on the same shared 2-core "
        "machine; CPU time (user + system) is less sensitive to the other jobs on it than wall "
        "time, and the load average at the start of each run is beside it.",
        "",
        "| split | system | test accuracy % | wall time | CPU time | load | SetFit's time / "
        "this | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for split in SIZES:
        runs = [r for r in setfit_records if r["split"] == split]
        if not runs:
            continue
        peer = runs[-1]  # the latest run of the split
        lines.append(_setfit_row(peer, LABELS[split]))
        for mode in ("adapter", "finetune"):
            ours_record = _ours(ours, split, mode)
            if ours_record is not None:
                lines.append(_our_row(peer, ours_record, LABELS[split], mode))
    full = _ours(ours, "train", "adapter")
    if full is not None:
        lines += ["", f"Full train split: contrastkit's adapter took {_duration(full['end_to_end_s'])}"
                  f" end to end ({_duration(full.get('cpu_s'))} CPU, load {_load(full)}); SetFit "
                  "was not started there (see the estimate below)."]  # fmt: skip
    lines += ["", *_notes(setfit_records), "", f"Command: `{command}`."]
    return "\n".join(lines)


def _verdict(peer: dict, metrics: dict, low: float, estimate: float) -> str:
    """3x faster (on the measured lower bound when SetFit was stopped) and at least as
    accurate (linear probe, else kNN-1 named)."""
    fast = low >= SPEEDUP_TARGET
    speed = "3x faster" if fast else ("3x faster by SetFit's pace" if estimate >= SPEEDUP_TARGET
                                      else "NOT 3x faster")  # fmt: skip
    if not peer["finished"]:
        return f"{speed}; accuracy not compared (SetFit did not finish)"
    accurate = metrics["linear_accuracy"] >= peer["accuracy"]
    if accurate and fast:
        return "**MET**"
    if not accurate and metrics["knn1_accuracy"] >= peer["accuracy"]:
        return f"linear below, kNN-1 at or above; {speed}"
    missed = [name for name, ok in (("accuracy", accurate), ("speed", fast)) if not ok]
    return f"**NOT MET** ({', '.join(missed)})"


def _notes(records: list[dict]) -> list[str]:
    notes = []
    latest = {r["split"]: r for r in records}  # the latest run of each split, as in the table
    records = [latest[split] for split in SIZES if split in latest]
    for r in records:
        label = LABELS[r["split"]]
        note = f"; {r['note']}" if r.get("note") else ""
        notes.append(
            f"- {label}: SetFit planned {r['planned_steps']:,} steps for {r['train_rows']:,} rows "
            f"({r['machine']}, {r['threads']} thread(s), setfit {r['setfit_version']}){note}."
        )
    rates = [r.get("per_step_s", r["elapsed_s"] / max(r["steps_done"], 1)) for r in records]
    if rates:
        per_step = min(rates)
        k = largest_rows_within(per_step)
        full = planned_steps(np.repeat(np.arange(77), 130))
        notes.append(
            f"- At the fastest measured pace ({per_step:.2f} s a step) "
            f"SetFit's default plan for 77 balanced classes fits in 60 minutes up to {k} rows a "
            f"class ({77 * k} rows; {k + 1} rows a class plan "
            f"{planned_steps(np.repeat(np.arange(77), k + 1)):,} steps); the full train split "
            f"({full:,} steps for 130 rows a class) would take ~{full * per_step / 86400:.0f} "
            "days here."
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
    parser.add_argument("--out", type=Path, default=OUT)
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
    command = "OMP_NUM_THREADS=1 python -m benchmarks.setfit_peer run --split SPLIT --minutes M"
    write_section(args.out, section(records, newest(read_records(args.ours)), command), *MARKERS)
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
