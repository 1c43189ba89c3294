"""The recommendation benchmark: MovieLens 100k and synthetic scale.

    OMP_NUM_THREADS=1 python -m benchmarks.recommend            # everything (about 1.5 h here)
    python -m benchmarks.recommend --only movielens,coldstart   # skip the scale runs
    python -m benchmarks.recommend --reuse                      # rewrite the section from records

- `movielens`: `contrastkit recommend fit` (the same code, `fit_run`) on ../shared/data/
  movielens-100k with the defaults, seeds 0, 1, 2: the two-tower model and every baseline on
  the same leave-last-out split; then the ablations (no logQ correction, no item text, no
  history pooling: a user id embedding instead), one run per seed each.
- `coldstart`: the same split, but the training interactions of a fifth of the items (drawn
  once, seed 0) are removed, so their validation and test cases are items nobody interacted
  with in training; the two-tower model with and without item text against the baselines.
  (The standard protocol has only 16 test items with <= 5 training interactions.)
- `scale`: one epoch of the default model on 1e5, 1e6 and 1e7 synthetic interactions (Zipf item
  popularity; 100 interactions a user on average; random 384-d item vectors), each in a fresh
  process so that its peak memory is its own.

Every run is appended to benchmarks/results/recommend.jsonl as it ends; `--reuse` reads the runs
already there instead of running them again. The Markdown section goes to
benchmarks/results/recommend.md (`benchmarks/recommend_report.py`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from benchmarks.machine import cpu_model
from benchmarks.quality_banking77 import append_record, read_records

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "movielens-100k"
RECORDS = ROOT / "benchmarks" / "results" / "recommend.jsonl"
MARKDOWN = ROOT / "benchmarks" / "results" / "recommend.md"
SEEDS = (0, 1, 2)
VARIANTS = {
    "default": ({}, ""),
    "no logQ correction": ({"logq": False}, " --no-logq"),
    "no item text": ({"item_text": False}, " --no-item-text"),
    "no history pooling": ({"history": False, "user_ids": True}, " --no-history --user-ids"),
}
COLD_VARIANTS = ("default", "no item text")
COLD_ITEM_SHARE, COLD_DRAW_SEED = 0.2, 0
SCALE_SIZES = (100_000, 1_000_000, 10_000_000)
FIT = (
    "contrastkit recommend fit --interactions ../shared/data/movielens-100k/ratings.csv "
    "--items ../shared/data/movielens-100k/items.csv --seed {seed}{flags} --out run"
)


def _done(records: list[dict], **key) -> bool:
    return any(all(r.get(k) == v for k, v in key.items()) for r in records)


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def movielens(variant: str, seed: int, workdir: Path) -> dict:
    """One `recommend fit` run on MovieLens 100k (baselines with the default variant)."""
    from contrastkit.apps.recommend.run import fit_run

    options, flags = VARIANTS[variant]
    default = variant == "default"
    result = fit_run(
        DATA / "ratings.csv",
        workdir / f"{variant}-{seed}",
        items=DATA / "items.csv",
        options={**options, "seed": seed},
        baselines=default,
        report=default,
        quiet=True,
    )
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    return {
        "section": "movielens",
        "variant": variant,
        "seed": seed,
        "models": metrics["models"],
        "best_epoch": metrics["training"]["best_epoch"],
        "timing": result.timing,
        "command": FIT.format(seed=seed, flags=flags + ("" if default else " --no-baselines")),
        "machine": cpu_model(),
        "threads": _threads(),
        "load": os.getloadavg()[0],
    }


def cold_items(n_items: int, counts: np.ndarray) -> np.ndarray:
    """A fixed fifth of the items that have training interactions (seeded draw)."""
    rng = np.random.default_rng(COLD_DRAW_SEED)
    candidates = np.flatnonzero(counts > 0)
    return np.sort(rng.choice(candidates, int(COLD_ITEM_SHARE * len(candidates)), replace=False))


def coldstart(variant: str, seed: int) -> dict:
    """The leave-last-out split with the training interactions of a fifth of the items
    removed: every model fit on what is left, all measured on the same held-out items."""
    from contrastkit.apps.recommend.evaluate import Protocol, evaluate_all, validation_ndcg
    from contrastkit.apps.recommend.inputs import load_data
    from contrastkit.apps.recommend.recommender import Recommender
    from contrastkit.apps.recommend.split import item_counts, leave_last_out

    rec = Recommender(**VARIANTS[variant][0], seed=seed)
    data, catalogue = load_data(
        DATA / "ratings.csv", DATA / "items.csv", use_text=rec.options.item_text
    )
    split = leave_last_out(data, seed)
    cold = cold_items(data.n_items, item_counts(data, split.train))
    split.train = split.train[~np.isin(data.items[split.train], cold)]
    protocol = Protocol.of(data, split, seed)
    tick = time.perf_counter()
    rec.fit_rows(data, catalogue, split.train, validation_ndcg(protocol))
    fit_s = time.perf_counter() - tick
    evaluation = evaluate_all(rec, protocol, catalogue.features, variant == "default")
    evaluation.metrics["two-tower"]["fit_s"] = fit_s
    return {
        "section": "coldstart",
        "variant": variant,
        "seed": seed,
        "cold_items": len(cold),
        "models": evaluation.metrics,
        "command": f"python -m benchmarks.recommend --only coldstart  (seed {seed})",
        "machine": cpu_model(),
        "threads": _threads(),
    }


def synthetic_interactions(n: int, seed: int = 0):
    """`n` distinct (user, item) interactions: Zipf(1) item popularity, Zipf(0.5) user activity,
    n / 100 users and n / 500 items (at least 1000 of each), times in draw order."""
    from contrastkit.apps.recommend.data import Interactions

    rng = np.random.default_rng(seed)
    n_users, n_items = max(1000, n // 100), max(1000, n // 500)
    p_items = 1.0 / np.arange(1, n_items + 1)
    p_users = 1.0 / np.arange(1, n_users + 1) ** 0.5
    keys = np.zeros(0, dtype=np.int64)
    while len(keys) < n:
        draw = int(1.2 * (n - len(keys))) + 1000
        users = rng.choice(n_users, draw, p=p_users / p_users.sum())
        items = rng.choice(n_items, draw, p=p_items / p_items.sum())
        fresh = np.concatenate([keys, users.astype(np.int64) * n_items + items])
        _, first = np.unique(fresh, return_index=True)
        keys = fresh[np.sort(first)]
    keys = keys[:n]
    ids = lambda count, prefix: np.array([f"{prefix}{i}" for i in range(count)], dtype=object)  # noqa: E731
    return Interactions(
        keys // n_items, keys % n_items, np.arange(n, dtype=np.float64),
        ids(n_users, "u"), ids(n_items, "i"), f"synthetic {n:,}",
    )  # fmt: skip


def scale_one(n: int) -> dict:
    """One epoch of the default model on `n` synthetic interactions (run in its own process)."""
    import resource

    from contrastkit.apps.recommend.catalogue import Catalogue
    from contrastkit.apps.recommend.recommender import Recommender

    tick = time.perf_counter()
    data = synthetic_interactions(n)
    vectors = np.random.default_rng(1).normal(size=(data.n_items, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    catalogue = Catalogue(data.item_ids, list(data.item_ids), None, vectors, None, "vectors")
    data_s = time.perf_counter() - tick
    rec = Recommender(epochs=1)
    tick, cpu = time.perf_counter(), time.process_time()
    rec.fit_rows(data, catalogue)
    fit_s, cpu_s = time.perf_counter() - tick, time.process_time() - cpu
    return {
        "section": "scale",
        "interactions": n,
        "users": data.n_users,
        "items": data.n_items,
        "steps": rec.log_[-1]["step"],
        "data_s": data_s,
        "epoch_s": fit_s,
        "epoch_cpu_s": cpu_s,  # what the shared machine's other jobs cannot inflate much
        "load": os.getloadavg()[0],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "command": f"python -m benchmarks.recommend --scale-one {n}",
        "machine": cpu_model(),
        "threads": _threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="movielens,coldstart,scale")
    parser.add_argument("--reuse", action="store_true", help="only rewrite the section")
    parser.add_argument("--scale-one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scale_one:
        print(json.dumps(scale_one(args.scale_one)))
        return
    from benchmarks.recommend_report import write_markdown

    sections = args.only.split(",")
    records = read_records(RECORDS)
    if not args.reuse:
        run_missing(sections, records)
    write_markdown(read_records(RECORDS), MARKDOWN)
    print(f"wrote {MARKDOWN}")


def run_missing(sections: list[str], records: list[dict]) -> None:
    if ("movielens" in sections or "coldstart" in sections) and not DATA.is_dir():
        sys.exit(f"{DATA} is missing: MovieLens 100k is needed for these sections")
    with tempfile.TemporaryDirectory() as workdir:
        for seed in SEEDS:
            for variant in VARIANTS if "movielens" in sections else ():
                if not _done(records, section="movielens", variant=variant, seed=seed):
                    append_record(RECORDS, movielens(variant, seed, Path(workdir)))
                    print(f"movielens {variant} seed {seed} done", flush=True)
            for variant in COLD_VARIANTS if "coldstart" in sections else ():
                if not _done(records, section="coldstart", variant=variant, seed=seed):
                    append_record(RECORDS, coldstart(variant, seed))
                    print(f"coldstart {variant} seed {seed} done", flush=True)
    for n in SCALE_SIZES if "scale" in sections else ():
        if not _done(records, section="scale", interactions=n):
            command = [sys.executable, "-m", "benchmarks.recommend", "--scale-one", str(n)]
            done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=os.environ)
            if done.returncode != 0:
                sys.exit(f"scale {n}: {done.stderr.strip()[-2000:]}")
            append_record(RECORDS, json.loads(done.stdout.strip().splitlines()[-1]))
            print(f"scale {n:,} done", flush=True)


if __name__ == "__main__":
    main()
