"""The 10-shot linear probe of issue 23 on valid.csv: what the adapter's residual scale and a few
other settings do to kNN-1, the linear probe and MAP@R (test.csv is never read).

    python -m benchmarks.adapter_probe_valid --split train_10 --seeds 0,1,2,3,4
    python -m benchmarks.adapter_probe_valid --split train_10 --extra '{"adapter_hidden": 96}'
    python -m benchmarks.adapter_probe_valid --split train_10 --ensemble xfit --seeds 0,1,2
    python -m benchmarks.adapter_probe_valid --summary   # means over seeds, kNN-1 / linear / MAP@R

Each run trains the adapter with the library's defaults (plus `--extra` options) and scores
valid.csv at residual scales 0 (the frozen model) to 1, without retraining. `--held`:

- `none`: trained on every training row;
- `check`: trained without the safety net's check rows (`contrastkit.run.check.check_split`,
  a tenth of each class), valid.csv scored against the rows that trained, and the check rows
  scored too (what a per-run choice of the scale on them would see);
- `reference`: trained without the check rows, valid.csv scored against every training row
  (what `contrastkit refine --test` does: the check rows stay reference rows).

`--ensemble seeds|xfit`: the residual averaged over three adapters, trained on every row with
three seeds, or each on two thirds of every class. Records: benchmarks/results/adapter_probe_valid.jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.never_worse import load  # noqa: E402
from benchmarks.quality_banking77 import DATA, Split, append_record  # noqa: E402

JSONL = ROOT / "benchmarks" / "results" / "adapter_probe_valid.jsonl"
SCALES = (0.0, 0.25, 0.5, 0.75, 1.0)


def scores(ref, ref_codes, query, query_codes, seed: int) -> dict:
    from contrastkit.evaluation.metrics import accuracies
    from contrastkit.evaluation.retrieval import retrieval_metrics

    a = accuracies(ref, ref_codes, query, query_codes, seed=seed)
    return {"knn1": a["knn1_accuracy"], "linear": a["linear_accuracy"],
            "map": retrieval_metrics(query, query_codes)["map_at_r"]}  # fmt: skip


def residuals(refiner, texts) -> tuple[np.ndarray, np.ndarray]:
    """(unit base embeddings, the adapter's residual at scale 1) of `texts`."""
    import torch

    base = torch.nn.functional.normalize(torch.as_tensor(refiner.base_transform(texts)), dim=1)
    with torch.no_grad():
        return base.numpy(), refiner.backbone_.encoder.eval().mlp(base).numpy()


def sweep(parts: list[tuple[np.ndarray, np.ndarray]], ref, ref_codes, query, query_codes, seed):
    """Scores at every scale; `parts` (base, residual) of the reference rows and the queries."""
    (b_ref, r_ref), (b_q, r_q) = parts

    def unit(z):
        return z / np.linalg.norm(z, axis=1, keepdims=True)

    return {s: scores(unit(b_ref[ref] + s * r_ref[ref]), ref_codes, unit(b_q[query] +
            s * r_q[query]), query_codes, seed) for s in SCALES}  # fmt: skip


def fit(texts, labels, rows, seed: int, extra: dict):
    from contrastkit import Refiner

    refiner = Refiner(mode="adapter", seed=seed, quiet=True, device="cpu", **extra)
    return refiner.fit([texts[i] for i in rows], labels[rows])


def run(split: str, seed: int, held: str, ensemble: str | None, extra: dict, data: dict) -> dict:
    from contrastkit.data import encode_labels
    from contrastkit.run.check import check_split

    train, valid = data[split], data["valid"]
    codes = encode_labels(train.labels, valid.labels)
    every = np.arange(len(train.texts))
    kept, check = check_split(codes.train, seed) if held != "none" else (every, every[:0])
    started = time.perf_counter()
    if ensemble:
        rng, fold = np.random.default_rng(seed), np.empty(len(every), int)
        for c in np.unique(codes.train):
            rows = rng.permutation(np.flatnonzero(codes.train == c))
            fold[rows] = np.arange(len(rows)) % 3
        subsets = [every if ensemble == "seeds" else np.flatnonzero(fold != k) for k in range(3)]
        fitted = [fit(train.texts, train.labels, rows, 10 * seed + k, extra) for k, rows in
                  enumerate(subsets)]  # fmt: skip
    else:
        fitted = [fit(train.texts, train.labels, kept, seed, extra)]
    epochs = fitted[0].plan_.epochs
    on_train = [residuals(r, train.texts) for r in fitted]
    on_valid = [residuals(r, valid.texts) for r in fitted]
    tr = (on_train[0][0], np.mean([p[1] for p in on_train], axis=0))
    va = (on_valid[0][0], np.mean([p[1] for p in on_valid], axis=0))
    ref = every if held == "reference" else kept
    all_valid = np.arange(len(valid.texts))
    record = {"split": split, "seed": seed, "held": held, "ensemble": ensemble, "extra": extra,
              "epochs": epochs, "valid": sweep([tr, va], ref, codes.train[ref], all_valid,
                                               codes.test, seed)}  # fmt: skip
    if held == "check":
        record["check"] = sweep([tr, tr], kept, codes.train[kept], check, codes.train[check], seed)
    record.update(fit_s=time.perf_counter() - started, load=os.getloadavg())
    return record


def summary(records: list[dict]) -> list[str]:
    """Mean kNN-1 % / linear % / MAP@R over seeds at each scale, one line per configuration."""
    import statistics

    groups: dict[str, list[dict]] = {}
    for r in records:
        key = f"{r['split']} held={r['held']} ensemble={r['ensemble']} {json.dumps(r['extra'])}"
        groups.setdefault(key, []).append(r)
    lines = []
    for key, runs in groups.items():
        seeds = ",".join(str(r["seed"]) for r in runs)
        for part in ("valid", "check"):
            if part not in runs[0]:
                continue
            cells = []
            for s in runs[0][part]:
                means = [statistics.mean(r[part][s][m] for r in runs) for m in ("knn1", "linear")]
                mean_map = statistics.mean(r[part][s]["map"] for r in runs)
                cells.append(f"s={s}: {100 * means[0]:.2f} / {100 * means[1]:.2f} / {mean_map:.3f}")
            lines.append(f"{key} {part} (seeds {seeds}): " + "; ".join(cells))
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--split", default="train_10", choices=("train_2", "train_5", "train_10"))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--held", default="none", choices=("none", "check", "reference"))
    parser.add_argument("--ensemble", choices=("seeds", "xfit"))
    parser.add_argument("--extra", type=json.loads, default={}, help="Refiner options, JSON")
    parser.add_argument("--jsonl", type=Path, default=JSONL)
    parser.add_argument("--summary", action="store_true", help="print the means and stop")
    args = parser.parse_args(argv)
    if args.summary:
        from benchmarks.quality_banking77 import read_records

        print("\n".join(summary(read_records(args.jsonl))))
        return 0
    if not (DATA / "valid.csv").is_file():
        print(f"{DATA} is missing: this benchmark needs ../shared/data/banking77")
        return 2
    import pandas as pd

    data = load()
    frame = pd.read_csv(DATA / "valid.csv")
    data["valid"] = Split(frame["text"].astype(str).tolist(), frame["category"].to_numpy())
    for seed in (int(s) for s in args.seeds.split(",")):
        record = run(args.split, seed, args.held, args.ensemble, args.extra, data)
        print(json.dumps(record), flush=True)
        append_record(args.jsonl, record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
