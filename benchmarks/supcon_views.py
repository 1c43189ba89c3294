"""Why supervised contrastive methods on images default to one augmented view of a row.

    python -m benchmarks.supcon_views --minutes 3 --out benchmarks/results/supcon_views_3min.jsonl

SupCon's paper puts two augmented views of every row in a batch. With the class-balanced
sampler every anchor already has positives (the other rows of its class, each augmented), so
the second view mostly doubles the cost of a step. This trains the small CNN on Fashion-MNIST
for the same wall-clock budget with supcon at one view, ce, and supcon at two views (budgeted as
in `benchmarks.fashion_mnist`), and writes one JSON line of test scores per configuration.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchmarks.fashion_mnist import PROBE_ROWS, budgeted_fit
from benchmarks.self_supervised import image_scores, load_fashion_mnist

CONFIGS = (
    ("supcon, 1 view", "supcon", {"views": 1}),
    ("ce", "ce", {}),
    ("supcon, 2 views", "supcon", {"views": 2}),
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=3.0, help="budget per configuration")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="JSONL file for the results (default: stdout)")
    args = parser.parse_args(argv)
    x, y, x_test, y_test = load_fashion_mnist(False, args.seed)
    lines = []
    for name, method, options in CONFIGS:
        r, figures = budgeted_fit(method, options, x, y, args.minutes * 60, args.seed)
        scores = image_scores(r.transform(x), y, r.transform(x_test), y_test, PROBE_ROWS, args.seed)
        lines.append(json.dumps({"name": name, "minutes": args.minutes, **scores, **figures}))
        print(lines[-1], flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
