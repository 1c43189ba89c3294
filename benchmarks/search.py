"""Benchmarks of search and duplicate detection; records to benchmarks/results/search.jsonl,
a Markdown section to benchmarks/results/search.md.

    OMP_NUM_THREADS=2 python -m benchmarks.search --only speed,approx,hnsw,dedup,mining
    python -m benchmarks.search --only banking77,mrpc --model frozen --model run_b77/model
    python -m benchmarks.search --report        # only re-render the Markdown

Each part appends its records (with the machine, the threads and the date); the report shows
the latest record of each measurement.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from benchmarks.machine import cpu_model  # noqa: E402
from benchmarks.search_report import render  # noqa: E402

PARTS = ("speed", "approx", "hnsw", "dedup", "mining", "banking77", "mrpc")
JSONL = ROOT / "benchmarks" / "results" / "search.jsonl"
MARKDOWN = ROOT / "benchmarks" / "results" / "search.md"


def run_part(part: str, args: argparse.Namespace) -> list[dict]:
    from benchmarks import search_dedup, search_quality, search_speed

    if part == "speed":
        return [r for n in args.sizes for r in search_speed.speed(n, 3 if n >= 1_000_000 else 5)]
    if part == "approx":
        return search_speed.approx(args.approx_rows, 3, ("ivf", "ivf-sq8", "ivf-pq"))
    if part == "hnsw":
        return search_speed.hnsw(args.hnsw_rows, 5) + search_speed.approx(
            args.hnsw_rows, 5, ("ivf",)
        )
    if part == "dedup":
        return [search_dedup.dedup(args.dedup_rows)]
    if part == "mining":
        return search_dedup.mining(args.mining_sizes)
    if part == "banking77":
        return [search_quality.banking77(model) for model in args.model]
    return [search_quality.mrpc(model) for model in args.model]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default="speed,approx,hnsw,dedup,mining,banking77,mrpc")
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--approx-rows", type=int, default=1_000_000)
    parser.add_argument("--hnsw-rows", type=int, default=100_000)
    parser.add_argument("--dedup-rows", type=int, default=1_000_000)
    parser.add_argument("--mining-sizes", default="10000,30000,100000,200000,500000,1000000")
    parser.add_argument("--model", action="append", help="frozen, or a model folder (repeat)")
    parser.add_argument("--report", action="store_true", help="only render the Markdown")
    args = parser.parse_args(argv)
    args.sizes = [int(v) for v in args.sizes.split(",")]
    args.mining_sizes = [int(v) for v in args.mining_sizes.split(",")]
    args.model = args.model or ["frozen"]
    parts = [] if args.report else [p.strip() for p in args.only.split(",")]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts {sorted(unknown)}; choose from {', '.join(PARTS)}")
    context = {
        "cpu": cpu_model(), "threads": os.environ.get("OMP_NUM_THREADS", "all"),
        "cores": os.cpu_count(), "date": datetime.date.today().isoformat(),
    }  # fmt: skip
    for part in parts:
        for record in run_part(part, args):
            record = {**record, **context}
            print(json.dumps(record), flush=True)
            with open(JSONL, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
    records = (
        [json.loads(line) for line in JSONL.read_text().splitlines()] if JSONL.exists() else []
    )
    MARKDOWN.write_text(render(records))
    print(f"wrote {MARKDOWN}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
