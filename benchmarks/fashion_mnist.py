"""Supervised refinement of Fashion-MNIST images: ce, supcon and hscl under the same CPU budget.

    python -m benchmarks.fashion_mnist --minutes 3 --seeds 0 --claim-minutes 1.5 \\
        --claim-seeds 0,1,2 --out BENCHMARKS.md --json /tmp/fashion_mnist.json
    python -m benchmarks.fashion_mnist --minutes 10 --seeds 0,1,2 --out BENCHMARKS.md   # full
    python -m benchmarks.fashion_mnist --quick --out /tmp/fm-quick.md   # proves it runs

Every configuration trains the library's small CNN from scratch on the 60000 labelled training
images with the library's defaults (the "images-finetune" recipe), for the same wall-clock
budget: the step time is measured first (see `step_seconds`), the steps follow from the budget,
trained as the nearest whole number of epochs over a seeded subset of the rows where that would
overshoot. The refined embeddings are scored on the 10000 test images: cosine
kNN (k = 1, 10) over all training embeddings and a linear probe (logistic regression fit on
PROBE_ROWS training embeddings). Beside them: raw pixels and the randomly initialised CNN.

Two parts: the main comparison (ce, supcon, hscl with beta=1) at `budget_minutes` over `seeds`,
and the H-SCL claim configurations (hscl beta=0, its SCL form, against beta=1; supcon without
and with a hardness tilt) at `claim_minutes` over `claim_seeds`. A configuration trained at the
same budget and seed in both parts is trained once.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from benchmarks.machine import cpu_model
from benchmarks.markdown import write_section as write_markdown_section
from benchmarks.self_supervised import (
    budget_rows,
    image_scores,
    load_fashion_mnist,
)

from contrastkit.config.defaults import DEFAULT_VIEWS

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- fashion-mnist:begin -->", "<!-- fashion-mnist:end -->"
FIGURE = Path("benchmarks") / "figures" / "fashion_mnist.png"  # relative to the repository root
# Runs at the target's budget (TARGET_MINUTES or more) get a section and a plot of their own, so
# that `make bench-quality`'s short runs do not overwrite the runs the target is judged on.
TARGET_BEGIN, TARGET_END = (
    "<!-- fashion-mnist-target:begin -->",
    "<!-- fashion-mnist-target:end -->",
)
TARGET_FIGURE = FIGURE.with_name("fashion_mnist_target.png")
PROBE_ROWS = 10000
QUICK_BATCH = 32  # quick runs only prove the code runs: small batches keep them fast
TARGET_KNN1, TARGET_MINUTES = 0.92, 10.0
# The hardness tilt supcon gets in the claim: hscl's documented default beta = 1 (LOSSES.md).
# Both weigh a negative by w = e^{beta s / t} on top of its e^{s / t}, so beta = 1 means the
# same relative tilt at either temperature (negatives weighed as at half the temperature).
HARDNESS = 1.0
# name -> (method, loss options); names are the table's rows.
CONFIGS: dict[str, tuple[str, dict]] = {
    "ce": ("ce", {}),
    "supcon": ("supcon", {}),
    "hscl (beta=1)": ("hscl", {"beta": 1.0}),
    "hscl (beta=0, SCL)": ("hscl", {"beta": 0.0}),
    f"supcon (hardness={HARDNESS:g})": ("supcon", {"hardness": HARDNESS}),
}
MAIN = ["ce", "supcon", "hscl (beta=1)"]
CLAIMS = [
    ("hscl (beta=0, SCL)", "hscl (beta=1)"),
    ("supcon", f"supcon (hardness={HARDNESS:g})"),
]


def default_batch_size(method: str, n_rows: int) -> int:
    """The batch size the library's plan picks for `method` on n_rows labelled images."""
    from contrastkit.config.defaults import plan_training
    from contrastkit.config.refine_config import make_config

    return plan_training(make_config(method=method), "images", "finetune", n_rows, 10).batch_size


def _refiner(method: str, options: dict, seed: int, **training):
    from contrastkit import Refiner

    return Refiner(method=method, seed=seed, quiet=True, device="cpu", **training, **options)


def step_seconds(method: str, options: dict, x, y, batch: int, seed: int) -> float:
    """Seconds per optimiser step with set-up cost removed, as the self-supervised benchmark
    measures it: (t(8 steps) - t(2 steps)) / 6 after a warm-up fit; t(8) / 8 (an upper bound)
    when timing noise makes the difference implausibly small. x, y: shuffled rows."""
    times = {}
    for steps in (2, 2, 8):  # the first fit warms up caches and lazy imports
        rows = slice(0, min(len(x), steps * batch))
        r = _refiner(method, options, seed, epochs=1, batch_size=batch)
        r.fit(x[rows], y[rows])
        times[steps] = r.fit_seconds_
    per_step = times[8] / 8
    difference = (times[8] - times[2]) / 6
    return difference if difference >= per_step / 4 else per_step


def budgeted_fit(
    method: str, options: dict, x, y, budget_s: float, seed: int, batch_size: int | None = None
):
    """(fitted Refiner, figures): `method` trained on (x, y) for the steps `budget_s` holds at the
    measured step time: whole epochs of all rows, or one epoch of a seeded subset. `batch_size`
    None: the library's default."""
    n = len(x)
    batch = batch_size or default_batch_size(method, n)
    order = np.random.default_rng([seed, 3]).permutation(n)  # rows are ordered by class
    timing = order[: 8 * batch]
    step_s = step_seconds(method, options, x[timing], y[timing], batch, seed)
    steps = max(1, int(budget_s / step_s))
    rows, epochs = budget_rows(steps, math.ceil(n / batch), batch, order)
    r = _refiner(method, options, seed, epochs=epochs, batch_size=batch_size)
    r.fit(x[rows], y[rows])
    trained_steps = epochs * math.ceil(len(rows) / batch)
    # ce sees one view of a row and its epoch ends on a partial batch; the contrastive
    # recipes train on `views` views of a row, in full class-balanced batches.
    views = options.get("views") or DEFAULT_VIEWS
    seen = epochs * len(rows) if method == "ce" else views * trained_steps * batch
    return r, {
        "rows": int(len(rows)),
        "epochs": int(epochs),
        "steps": int(trained_steps),
        "batch_size": int(batch),
        "images_seen": int(seen),
        "step_s": float(step_s),
        "fit_s": float(r.fit_seconds_),
        "images_per_s": float(seen / r.fit_seconds_),
    }


def _load() -> str:
    try:
        return " / ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:  # pragma: no cover - not on every platform
        return "unknown"


def run(
    budget_minutes: float,
    seeds: list[int],
    quick: bool = False,
    *,
    claim_minutes: float | None = None,
    claim_seeds: list[int] | None = None,
    configs: list[str] | None = None,
) -> dict:
    """Train and score every configuration; returns a JSON-able dict for `section`.

    `budget_minutes` and `seeds`: the main comparison (ce, supcon, hscl beta=1).
    `claim_minutes` (default: budget_minutes) and `claim_seeds` (default: seeds): the H-SCL
    claim configurations. `configs`: only these names of CONFIGS (default: all).
    `quick`: 3000 training and 1000 test images, for tests; the figures mean nothing.
    """
    import torch

    from contrastkit.models.backbones import ImageBackbone

    if budget_minutes <= 0 or (claim_minutes is not None and claim_minutes <= 0):
        raise ValueError("budget_minutes and claim_minutes must be positive numbers of minutes")
    if not seeds:
        raise ValueError("seeds must name at least one seed, e.g. [0]")
    claim_minutes = budget_minutes if claim_minutes is None else claim_minutes
    claim_seeds = list(seeds if claim_seeds is None else claim_seeds)
    wanted = set(CONFIGS if configs is None else configs)
    unknown = wanted - set(CONFIGS)
    if unknown:
        raise ValueError(f"unknown configs {sorted(unknown)}; choose from {list(CONFIGS)}")
    started, load_start = time.perf_counter(), _load()
    x_train, y_train, x_test, y_test = load_fashion_mnist(quick, seeds[0])
    probe_rows = min(PROBE_ROWS, len(x_train))

    torch.manual_seed(seeds[0])
    cnn = ImageBackbone.for_training(x_train, "cnn", torch.device("cpu"))
    baselines = []
    for name, embed in (
        ("raw pixels (standardised)", cnn.base_embed),
        ("random-init CNN", cnn.embed),
    ):
        t = time.perf_counter()
        scores = image_scores(embed(x_train), y_train, embed(x_test), y_test, probe_rows, seeds[0])
        baselines.append({"name": name, **scores, "eval_s": time.perf_counter() - t})
        print(f"{name}: {scores}", flush=True)

    jobs = [(name, budget_minutes, seed) for name in MAIN for seed in seeds]
    jobs += [(n, claim_minutes, s) for pair in CLAIMS for n in pair for s in claim_seeds]
    runs, done = [], set()
    for name, minutes, seed in jobs:
        if name not in wanted or (name, minutes, seed) in done:
            continue
        done.add((name, minutes, seed))
        method, options = CONFIGS[name]
        r, figures = budgeted_fit(method, options, x_train, y_train, minutes * 60, seed,
                                  batch_size=QUICK_BATCH if quick else None)  # fmt: skip
        t = time.perf_counter()
        scores = image_scores(r.transform(x_train), y_train, r.transform(x_test), y_test,
                              probe_rows, seed)  # fmt: skip
        runs.append({"name": name, "method": method, "options": options, "minutes": minutes,
                     "seed": seed, **scores, **figures, "eval_s": time.perf_counter() - t})  # fmt: skip
        print(f"{name} ({minutes:g} min, seed {seed}): {scores} {figures}", flush=True)
    return {
        "quick": quick,
        "budget_minutes": budget_minutes,
        "seeds": list(seeds),
        "claim_minutes": claim_minutes,
        "claim_seeds": claim_seeds,
        "n_train": int(len(x_train)),
        "n_test": int(len(x_test)),
        "probe_rows": probe_rows,
        "baselines": baselines,
        "runs": runs,
        "machine": f"{cpu_model()}, {os.cpu_count()} cores, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads)",
        "load_average": {"start": load_start, "end": _load()},
        "date": datetime.date.today().isoformat(),
        "wall_s": time.perf_counter() - started,
    }


# ----------------------------------------------------------------------------- report


def _group(results: dict, name: str, minutes: float) -> list[dict]:
    return [r for r in results["runs"] if r["name"] == name and r["minutes"] == minutes]


def _stat(rows: list[dict], key: str) -> tuple[float, float | None]:
    """Mean and sample std over seeds (None for a single seed)."""
    values = [r[key] for r in rows]
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def _pct(rows: list[dict], key: str) -> str:
    mean, std = _stat(rows, key)
    return f"{100 * mean:.2f}" + (f" ± {100 * std:.2f}" if std is not None else "")


def _time(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _row(name: str, rows: list[dict]) -> str:
    epochs = sorted({r["epochs"] for r in rows})
    ep = "/".join(map(str, epochs)) + (f" of {rows[0]['rows']}" if rows[0]["rows"] else "")
    return (
        f"| {name} | {_pct(rows, 'knn1')} | {_pct(rows, 'knn10')} | {_pct(rows, 'linear')} "
        f"| {len(rows)} | {ep} | {round(_stat(rows, 'steps')[0])} "
        f"| {round(_stat(rows, 'images_seen')[0])} | {_time(_stat(rows, 'fit_s')[0])} "
        f"| {_stat(rows, 'images_per_s')[0]:.0f} |"
    )


def target_verdict(results: dict) -> tuple[bool | None, str]:
    """(met, sentence) for "supcon kNN-1 >= 92 % within 10 min of CPU training, above ce at the
    same budget", from the main comparison's figures; met is None when a row is missing."""
    minutes = results["budget_minutes"]
    supcon, ce = _group(results, "supcon", minutes), _group(results, "ce", minutes)
    if not supcon or not ce:
        return None, "NOT EVALUATED (supcon or ce missing from the main comparison)"
    s1, c1 = _stat(supcon, "knn1")[0], _stat(ce, "knn1")[0]
    fit_min = max(r["fit_s"] for r in supcon) / 60
    checks = [
        (s1 >= TARGET_KNN1, f"supcon kNN-1 {100 * s1:.2f} % {'>=' if s1 >= TARGET_KNN1 else '<'} "
                            f"{100 * TARGET_KNN1:g} %"),
        (fit_min <= TARGET_MINUTES, f"trained in {fit_min:.1f} min "
                                    f"{'<=' if fit_min <= TARGET_MINUTES else '>'} "
                                    f"{TARGET_MINUTES:g} min"),
        (s1 > c1, f"ce kNN-1 {100 * c1:.2f} % at the same budget "
                  f"({'below' if s1 > c1 else 'not below'} supcon)"),
    ]  # fmt: skip
    met = all(ok for ok, _ in checks)
    return met, f"**{'MET' if met else 'NOT MET'}**: " + "; ".join(text for _, text in checks)


def claim_lines(results: dict) -> list[str]:
    """One plain sentence per claim pair: the difference of the means against the seed spread."""
    minutes, lines = results["claim_minutes"], []
    for base, tilted in CLAIMS:
        a, b = _group(results, base, minutes), _group(results, tilted, minutes)
        if not a or not b:
            lines.append(f"- {tilted} vs {base}: not run.")
            continue
        parts = []
        for key, label in (("knn1", "kNN-1"), ("linear", "linear")):
            (ma, sa), (mb, sb) = _stat(a, key), _stat(b, key)
            diff = 100 * (mb - ma)
            if sa is None or sb is None:
                parts.append(f"{label} {diff:+.2f} points (one seed: no spread to compare with)")
                continue
            spread = 100 * max(sa, sb)
            verdict = (
                ("better" if diff > 0 else "worse") + " by more than the seed spread"
                if abs(diff) > spread
                else "within the seed spread (no difference shown)"
            )
            parts.append(f"{label} {diff:+.2f} points, seed std {100 * sa:.2f} / {100 * sb:.2f}: "
                         f"{verdict}")  # fmt: skip
        seeds = len({r["seed"] for r in a})
        lines.append(f"- **{tilted}** minus **{base}** ({seeds} seed{'s' * (seeds > 1)}, "
                     f"{minutes:g} min each): " + "; ".join(parts) + ".")  # fmt: skip
    return lines


def plot(results: dict, path: Path) -> None:
    """Bar chart of kNN-1 and linear accuracy per configuration, seed std as error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = [(f"{n}\n{m:g} min", _group(results, n, m)) for n, m in _table_keys(results)]
    groups = [(label, rows) for label, rows in groups if rows]
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(groups) + 2), 4))
    xs = np.arange(len(groups))
    for offset, key, label in ((-0.2, "knn1", "kNN-1"), (0.2, "linear", "linear probe")):
        stats = [_stat(rows, key) for _, rows in groups]
        ax.bar(xs + offset, [100 * m for m, _ in stats], 0.4, label=label,
               yerr=[100 * (s or 0) for _, s in stats], capsize=3)  # fmt: skip
    for b in results["baselines"]:
        ax.axhline(100 * b["knn1"], ls="--", lw=0.8, color="grey")
        ax.text(len(groups) - 0.5, 100 * b["knn1"], f"{b['name']} kNN-1", fontsize=7,
                ha="right", va="bottom", color="grey")  # fmt: skip
    ax.axhline(100 * TARGET_KNN1, ls=":", color="red", lw=1)
    ax.set_xticks(xs, [label for label, _ in groups], fontsize=8)
    lows = [100 * r["knn1"] for _, rows in groups for r in rows] + [100 * TARGET_KNN1]
    ax.set_ylim(max(0, min(lows) - 5), 100)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Fashion-MNIST, small CNN from scratch (error bars: seed std)")
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _table_keys(results: dict) -> list[tuple[str, float]]:
    keys = [(n, results["budget_minutes"]) for n in MAIN]
    keys += [(n, results["claim_minutes"]) for pair in CLAIMS for n in pair]
    return list(dict.fromkeys(keys))


def command(results: dict) -> str:
    """The command line that trains the runs of `results` again."""
    words = ["python -m benchmarks.fashion_mnist"]
    words += ["--quick"] if results["quick"] else []
    words += [f"--minutes {results['budget_minutes']:g}",
              "--seeds " + ",".join(map(str, results["seeds"]))]  # fmt: skip
    if results.get("claim_minutes") not in (None, results["budget_minutes"]):
        words.append(f"--claim-minutes {results['claim_minutes']:g}")
    if results.get("claim_seeds") not in (None, results["seeds"]):
        words.append("--claim-seeds " + ",".join(map(str, results["claim_seeds"])))
    names = list(dict.fromkeys(r["name"] for r in results["runs"]))
    if set(names) != set(CONFIGS):
        words.append("--configs '" + ",".join(names) + "'")
    return " ".join(words + ["--out BENCHMARKS.md"])


def at_target_budget(results: dict) -> bool:
    return not results["quick"] and results["budget_minutes"] >= TARGET_MINUTES


def markers(results: dict) -> tuple[str, str]:
    """The section `results` belong in: the target's (runs of TARGET_MINUTES or more) or the
    short runs' one."""
    return (TARGET_BEGIN, TARGET_END) if at_target_budget(results) else (BEGIN, END)


def default_figure(results: dict) -> Path:
    return TARGET_FIGURE if at_target_budget(results) else FIGURE


def section(results: dict, figure: str | Path | None = FIGURE) -> str:
    """The markdown section (between `markers(results)`) for `results` from `run`; draws the
    plot at `figure` (relative paths: from the repository root, as linked from BENCHMARKS.md
    there; None: no plot)."""
    begin, end = markers(results)
    title = (f"## Fashion-MNIST at the target's budget ({results['budget_minutes']:g} min a run)"
             if at_target_budget(results)
             else "## Fashion-MNIST: supervised refinement of a small CNN (CPU)")  # fmt: skip
    out = [begin, title, ""]
    if results["quick"]:
        out += ["**Quick run** (tiny budget and data subsets): proves the script runs; the "
                "figures mean nothing.", ""]  # fmt: skip
    out += [
        f"The library's small CNN trained from scratch on {results['n_train']} labelled training "
        "images with the default image recipe, every configuration for the same wall-clock "
        "budget (the nearest whole number of epochs to the steps the measured step time "
        "allows, over a seeded subset of the rows where that would overshoot; one augmented "
        "view of a row per step, the library's default). Test accuracy (%) on "
        f"{results['n_test']} images: cosine kNN over all training embeddings, and a linear "
        f"probe (logistic regression on {results['probe_rows']} training embeddings); mean ± "
        "std over seeds.",
        "",
        "| configuration | kNN-1 | kNN-10 | linear | seeds | epochs (of rows) | steps "
        "| images seen | train time | images/s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for b in results["baselines"]:
        out.append(f"| {b['name']} | {100 * b['knn1']:.2f} | {100 * b['knn10']:.2f} "
                   f"| {100 * b['linear']:.2f} | - | - | - | - | - | - |")  # fmt: skip
    for name, minutes in _table_keys(results):
        rows = _group(results, name, minutes)
        if rows:
            out.append(_row(f"{name}, {minutes:g} min", rows))
    met, sentence = target_verdict(results)
    if met is False and not at_target_budget(results) and not results["quick"]:
        checks = sentence.split(": ", 1)[1]  # the checks, without the bold verdict
        sentence = (f"not reached in {results['budget_minutes']:g} min a run ({checks}); "
                    "the section on runs at the target's budget judges it")  # fmt: skip
    out += [
        "",
        f"Target (issue 6): supcon kNN-1 >= {100 * TARGET_KNN1:g} % within {TARGET_MINUTES:g} "
        f"minutes of CPU training, and above ce at the same budget "
        f"({results['budget_minutes']:g} min here): {sentence}.",
        "",
        "H-SCL claims (hard negatives help supervised contrastive learning):",
        "",
        *claim_lines(results),
        "",
    ]
    if figure is not None:
        figure = Path(figure)
        plot(results, figure if figure.is_absolute() else ROOT / figure)
        out += [f"![Fashion-MNIST accuracy per configuration]({figure.as_posix()})", ""]
    load = results["load_average"]
    out += [
        f"Machine: {results['machine']}; load average (1/5/15 min) {load['start']} at the start, "
        f"{load['end']} at the end. Run {results['date']} in {results['wall_s'] / 60:.1f} min.",
        "",
        f"Command: `{command(results)}`.",
        end,
    ]
    return "\n".join(out) + "\n"


def write_section(out: Path, text: str) -> None:
    """Put `text` (from `section`) between its markers in `out` (appended when they are absent)."""
    begin, end = (TARGET_BEGIN, TARGET_END) if text.startswith(TARGET_BEGIN) else (BEGIN, END)
    write_markdown_section(out, text, begin, end)


def _seeds(text: str) -> list[int]:
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"seeds must be integers like 0,1,2, got {text!r}"
        ) from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, help="budget per main run (10; quick 0.05)")
    parser.add_argument("--seeds", type=_seeds, default=[0], help="main-comparison seeds (0)")
    parser.add_argument("--claim-minutes", type=float, help="budget per claim run (--minutes)")
    parser.add_argument("--claim-seeds", type=_seeds, help="claim seeds (default: --seeds)")
    parser.add_argument("--configs", help=f"comma-separated subset of: {', '.join(CONFIGS)}")
    parser.add_argument("--quick", action="store_true", help="tiny budget and data subsets")
    parser.add_argument("--out", type=Path, help="markdown file to write the section into")
    parser.add_argument("--json", type=Path, help="write the raw results here")
    parser.add_argument("--render", type=Path, metavar="JSON",
                        help="train nothing: write the section of results saved by --json")  # fmt: skip
    parser.add_argument("--figure", type=Path,
                        help=f"where to draw the plot (from the repository root; default {FIGURE}, "
                             f"or {TARGET_FIGURE.name} beside it for runs at the target's budget)")  # fmt: skip
    args = parser.parse_args(argv)
    if args.render:
        saved = json.loads(args.render.read_text())
        text = section(saved, figure=args.figure or default_figure(saved))
        print(text)
        if args.out:
            write_section(args.out, text)
        return 0
    minutes = args.minutes if args.minutes is not None else (0.05 if args.quick else 10.0)
    warnings.filterwarnings("ignore", category=UserWarning)
    results = run(minutes, args.seeds, args.quick, claim_minutes=args.claim_minutes,
                  claim_seeds=args.claim_seeds,
                  configs=args.configs.split(",") if args.configs else None)  # fmt: skip
    text = section(results, figure=args.figure or default_figure(results))
    print("\n" + text)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    if args.out:
        write_section(args.out, text)
        print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
