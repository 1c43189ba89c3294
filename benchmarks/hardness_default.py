"""Why the supcon adapter's hardness default depends on how many rows a class has.

    python -m benchmarks.hardness_default --out BENCHMARKS.md

(The recorded runs took 49 min of one-thread run time, two at a time, on a 2-core CPU.)

Banking77's train split alone (test.csv is never read): the frozen all-MiniLM-L6-v2
embeddings of train.csv, the supcon adapter with the library's defaults and hardness 0 (plain
SupCon) or 1 (the tilt towards hard negatives), scored by kNN-1 on held-out training rows:

- `fs10`, `fs30`, `fs60`: 10, 30 or 60 rows a class drawn from train.csv, scored on 20 other
  rows a class; three draws (one seeded generator), their mean;
- `cv5`: 5-fold stratified cross-validation of the whole split (about 104 rows a class).

Every run is appended to a JSONL file as it ends; `--reuse` reads back the runs already there,
so `--reuse` with a complete file only rewrites the section.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from benchmarks.machine import cpu_model
from benchmarks.markdown import write_section
from benchmarks.quality_banking77 import DATA, append_record, encode_frozen, read_records

ROOT = Path(__file__).resolve().parents[1]
PROTOCOLS = ("fs10", "fs30", "fs60", "cv5")
HARDNESS = (0.0, 1.0)
DRAW_SEED, FOLD_SEED, EVAL_ROWS_PER_CLASS = 123, 0, 20
MARKERS = ("<!-- hardness-default:begin -->", "<!-- hardness-default:end -->")


def folds(protocol: str, X: np.ndarray, y: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train rows, held-out rows) index pairs of one protocol."""
    if protocol == "cv5":
        from sklearn.model_selection import StratifiedKFold

        return list(StratifiedKFold(5, shuffle=True, random_state=FOLD_SEED).split(X, y))
    shots = int(protocol.removeprefix("fs"))
    rng = np.random.default_rng(DRAW_SEED)
    out = []
    for _ in range(3):
        train, held_out = [], []
        for label in np.unique(y):
            rows = rng.permutation(np.flatnonzero(y == label))
            train += list(rows[:shots])
            held_out += list(rows[shots : shots + EVAL_ROWS_PER_CLASS])
        out.append((np.array(train), np.array(held_out)))
    return out


def run(protocol: str, hardness: float, X: np.ndarray, y: np.ndarray, seed: int) -> dict:
    import torch

    from contrastkit import Refiner
    from contrastkit.evaluation import knn_score

    scores = []
    for train, held_out in folds(protocol, X, y):
        r = Refiner(mode="adapter", method="supcon", hardness=hardness, seed=seed, quiet=True)
        r.fit(X[train], y[train])
        scores.append(
            knn_score(r.transform(X[train]), y[train], r.transform(X[held_out]), y[held_out])
        )
    return {"protocol": protocol, "hardness": hardness, "seed": seed, "folds": scores,
            "knn1": float(np.mean(scores)), "machine": cpu_model(),
            "threads": torch.get_num_threads()}  # fmt: skip


def section(records: list[dict], command: str) -> str:
    from contrastkit.config.defaults import HARD_NEGATIVES_MIN_ROWS_PER_CLASS

    by = {(r["protocol"], r["hardness"]): r for r in records}
    lines = [
        "## The supcon adapter's hardness default: measured on training rows only",
        "",
        f"Command: `{command}` (Banking77 train.csv only; frozen all-MiniLM-L6-v2, the supcon "
        "adapter with the library's defaults, hardness 0 or 1; kNN-1 on held-out training rows; "
        f"seed 0; machine: {', '.join(sorted({r['machine'] for r in records}))}, torch threads "
        f"{', '.join(sorted({str(r.get('threads', '?')) for r in records}))}).",
        "",
        "| protocol | rows a class | hardness 0 kNN-1 % | hardness 1 kNN-1 % | tilt minus plain | "
        "by fold or draw |",
        "|---|---|---|---|---|---|",
    ]
    for protocol in PROTOCOLS:
        plain, tilted = by.get((protocol, 0.0)), by.get((protocol, 1.0))
        if plain is None or tilted is None:
            continue
        rows = "about 104 (5-fold)" if protocol == "cv5" else protocol.removeprefix("fs")
        per = ", ".join(
            f"{100 * (b - a):+.2f}" for a, b in zip(plain["folds"], tilted["folds"], strict=True)
        )
        lines.append(
            f"| {protocol} | {rows} | {100 * plain['knn1']:.2f} | {100 * tilted['knn1']:.2f} | "
            f"{100 * (tilted['knn1'] - plain['knn1']):+.2f} | {per} |"
        )
    lines += [
        "",
        "The tilt costs points with few rows a class and gains them with many; the crossover is "
        "near 60. The library's plan (`contrastkit.config.defaults`) therefore trains the "
        "adapter with hardness 1 when the classes average at least "
        f"{HARD_NEGATIVES_MIN_ROWS_PER_CLASS} training rows, where the gain was clear, and plain "
        "SupCon below that; a `--hardness` the user gives always wins.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument("--jsonl", type=Path,
                        default=ROOT / "benchmarks" / "results" / "hardness_default.jsonl")  # fmt: skip
    parser.add_argument("--reuse", action="store_true", help="read back runs already in --jsonl")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--protocols", default=",".join(PROTOCOLS),
                        help=f"comma-separated, of {', '.join(PROTOCOLS)} (default: all)")  # fmt: skip
    args = parser.parse_args(argv)
    protocols = [p.strip() for p in args.protocols.split(",") if p.strip()]
    unknown = sorted(set(protocols) - set(PROTOCOLS))
    if unknown:
        parser.error(f"unknown protocol {', '.join(unknown)}; choose from {', '.join(PROTOCOLS)}")
    if not (DATA / "train.csv").is_file():
        print(f"{DATA / 'train.csv'} is missing: this benchmark needs ../shared/data/banking77")
        return 2
    records = read_records(args.jsonl) if args.reuse else []
    if not args.reuse and args.jsonl.exists():
        args.jsonl.unlink()
    done = {(r["protocol"], r["hardness"], r["seed"]) for r in records}
    todo = [(p, h) for p in protocols for h in HARDNESS if (p, h, args.seed) not in done]
    if todo:
        import pandas as pd

        frame = pd.read_csv(DATA / "train.csv")  # train.csv alone: test.csv is never read
        X, _ = encode_frozen(frame["text"].astype(str).tolist())
        y = frame["category"].to_numpy()
        for protocol, hardness in todo:
            record = run(protocol, hardness, X, y, args.seed)
            print(json.dumps(record), flush=True)
            records.append(record)
            append_record(args.jsonl, record)
    command = "python -m benchmarks.hardness_default --out BENCHMARKS.md"
    write_section(args.out, section(records, command), *MARKERS)
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
