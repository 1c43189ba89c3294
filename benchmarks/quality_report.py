"""Markdown and plots for `benchmarks.quality`, computed only from the run records (JSONL) and
the published figures below; nothing here trains."""

from __future__ import annotations

import math
import os
import statistics
from pathlib import Path

from benchmarks.quality_banking77 import CONFIGS, HARDNESS, SPLIT_LABELS, SPLITS

# Published Banking77 test accuracies (%), typed once. Source: ../shared/design/ANCHORS.md
# ("Published": Casanueva et al. 2020 for USE+ConveRT and BERT; CPFT, Zhang et al. 2021; ICDA).
ANCHORS_SOURCE = "../shared/design/ANCHORS.md"
PUBLISHED = {
    "train": {"BERT-base fine-tuned": 93.66, "USE+ConveRT": 93.36},
    "train_10": {"ICDA": 89.79, "CPFT (RoBERTa, supervised contrastive)": 87.20,
                 "USE+ConveRT": 85.19},
    "train_5": {"CPFT (RoBERTa, supervised contrastive)": 80.86},
}  # fmt: skip

# Issue 4's targets.
ADAPTER_KNN1, ADAPTER_MAP_AT_R, ADAPTER_SECONDS = 0.930, 0.75, 300.0
FINETUNE_FULL, FINETUNE_10SHOT = 0.940, 0.88
TARGET_METHOD = "supcon"  # the library's default method is the one the targets are checked on

CLAIM_PAIRS = [
    ("hscl (beta=0, SCL)", "hscl (beta=0.5)"),
    ("hscl (beta=0, SCL)", "hscl (beta=1)"),
    ("hscl (beta=0, SCL)", "hscl (beta=2)"),
    ("supcon (hardness=0)", f"supcon (hardness={HARDNESS:g})"),
]
CLAIM_SPLITS = ("train_10", "train")
CLAIM_METRICS = (("knn1_accuracy", "kNN-1", 100), ("linear_accuracy", "linear", 100),
                 ("map_at_r", "MAP@R", 100))  # fmt: skip
NOT_IN_DEFAULT = "not run in the default bench (see --full)"


# ----------------------------------------------------------------------------- statistics


def mean_std(values: list[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (None for one value). Raises ValueError when empty."""
    if not values:
        raise ValueError("mean_std needs at least one value")
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def fmt_mean_std(values: list[float], scale: float = 100.0, digits: int = 2) -> str:
    mean, std = mean_std(values)
    text = f"{scale * mean:.{digits}f}"
    return text + (f" ± {scale * std:.{digits}f}" if std is not None else "")


def group(records: list[dict], split: str, mode: str, config: str) -> list[dict]:
    return [
        r for r in records if r["split"] == split and r["mode"] == mode and r["config"] == config
    ]


def values(rows: list[dict], metric: str) -> list[float]:
    return [r["metrics"][metric] for r in rows]


def compare(base: list[dict], other: list[dict], metric: str, scale: float = 100.0) -> dict:
    """Difference of means (other - base, scaled), the seed spread (larger sample std) and a
    verdict: "better"/"worse" (|difference| > spread), "within spread", or "one seed"."""
    (ma, sa), (mb, sb) = mean_std(values(base, metric)), mean_std(values(other, metric))
    diff = scale * (mb - ma)
    if sa is None or sb is None:
        return {"diff": diff, "spread": None, "verdict": "one seed"}
    spread = scale * max(sa, sb)
    verdict = ("better" if diff > 0 else "worse") if abs(diff) > spread else "within spread"
    return {"diff": diff, "spread": spread, "verdict": verdict}


def _time(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


# ----------------------------------------------------------------------------- Banking77 table


def _row_keys(records: list[dict]) -> list[tuple[str, str, str]]:
    order = {"frozen": 0, "adapter": 1, "finetune": 2}
    configs = ["frozen", *CONFIGS]
    keys = {(r["split"], r["mode"], r["config"]) for r in records}
    return sorted(keys, key=lambda k: (SPLITS.index(k[0]), order[k[1]], configs.index(k[2])))


def banking77_table(records: list[dict]) -> list[str]:
    lines = [
        "| split | mode | configuration | seeds | kNN-1 % | linear probe % | MAP@R | "
        "fit time (mean) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for split, mode, config in _row_keys(records):
        rows = group(records, split, mode, config)
        fit = "-" if mode == "frozen" else _time(statistics.fmean(r["fit_s"] for r in rows))
        lines.append(
            f"| {SPLIT_LABELS[split]} | {mode} | {config} | {len(rows)} "
            f"| {fmt_mean_std(values(rows, 'knn1_accuracy'))} "
            f"| {fmt_mean_std(values(rows, 'linear_accuracy'))} "
            f"| {fmt_mean_std(values(rows, 'map_at_r'), 1.0, 3)} | {fit} |"
        )
    return lines


def published_table() -> list[str]:
    lines = ["| split | system (published) | test accuracy % |", "|---|---|---|"]
    for split in SPLITS:
        for name, acc in PUBLISHED.get(split, {}).items():
            lines.append(f"| {SPLIT_LABELS[split]} | {name} | {acc:.2f} |")
    return lines


def _missing(split: str, mode: str, profile: str, skipped: list[dict]) -> str:
    why = [s["reason"] for s in skipped
           if (s["split"], s["mode"], s["config"]) == (split, mode, TARGET_METHOD)]  # fmt: skip
    if why:
        return f"not run: skipped to keep the time budget ({why[0]})"
    if profile == "default" and split == "train" and mode == "finetune":
        return NOT_IN_DEFAULT
    return "not run"


def targets(records: list[dict], profile: str, skipped: list[dict]) -> list[dict]:
    """Issue 4's three targets: [{"target", "measured", "verdict"}], verdict MET / NOT MET /
    a "not run ..." sentence, all from the records."""
    out = []
    rows = group(records, "train", "adapter", TARGET_METHOD)
    target = (f"adapter, {TARGET_METHOD}, defaults, full train: kNN-1 >= {100 * ADAPTER_KNN1:g} % "
              f"and MAP@R >= {ADAPTER_MAP_AT_R:g} within {ADAPTER_SECONDS / 60:g} min end to end "
              "(encoding included)")  # fmt: skip
    if rows:
        knn = mean_std(values(rows, "knn1_accuracy"))[0]
        map_r = mean_std(values(rows, "map_at_r"))[0]
        times = [r["end_to_end_s"] for r in rows if r.get("end_to_end_s") is not None]
        seconds = max(times) if times else math.inf  # not measured: the target is not shown met
        met = knn >= ADAPTER_KNN1 and map_r >= ADAPTER_MAP_AT_R and seconds <= ADAPTER_SECONDS
        took = f"{_time(seconds)} end to end" if times else "end-to-end time not measured"
        measured = (f"kNN-1 {100 * knn:.2f} %, MAP@R {map_r:.3f}, {took} "
                    f"({len(rows)} seed{'s' * (len(rows) > 1)})")  # fmt: skip
        out.append({"target": target, "measured": measured, "verdict": _met(met)})
    else:
        out.append({"target": target, "measured": "-", "verdict": "not run"})
    for split, bar in (("train", FINETUNE_FULL), ("train_10", FINETUNE_10SHOT)):
        target = (f"finetune, {TARGET_METHOD}, defaults, {SPLIT_LABELS[split]} train: "
                  f"kNN-1 or linear probe >= {100 * bar:g} %")  # fmt: skip
        rows = group(records, split, "finetune", TARGET_METHOD)
        if not rows:
            out.append({"target": target, "measured": "-",
                        "verdict": _missing(split, "finetune", profile, skipped)})  # fmt: skip
            continue
        knn = mean_std(values(rows, "knn1_accuracy"))[0]
        lin = mean_std(values(rows, "linear_accuracy"))[0]
        measured = f"kNN-1 {100 * knn:.2f} %, linear {100 * lin:.2f} % ({len(rows)} seed(s))"
        out.append({"target": target, "measured": measured, "verdict": _met(max(knn, lin) >= bar)})
    return out


def _met(ok: bool) -> str:
    return "**MET**" if ok else "**NOT MET**"


def targets_table(rows: list[dict]) -> list[str]:
    lines = ["| target (issue 4) | measured | verdict |", "|---|---|---|"]
    lines += [f"| {r['target']} | {r['measured']} | {r['verdict']} |" for r in rows]
    return lines


# ----------------------------------------------------------------------------- the H-SCL claim


def claim_rows(records: list[dict]) -> list[dict]:
    """Every (split, base, tilted) comparison that has runs on both sides, per metric."""
    out = []
    for split in CLAIM_SPLITS:
        for base, tilted in CLAIM_PAIRS:
            a = group(records, split, "adapter", base)
            b = group(records, split, "adapter", tilted)
            if not a or not b:
                continue
            seeds = min(len(a), len(b))
            cells = {key: compare(a, b, key, scale) for key, _, scale in CLAIM_METRICS}
            out.append({"split": split, "base": base, "tilted": tilted, "seeds": seeds,
                        "cells": cells})  # fmt: skip
    return out


def _cell(c: dict, digits: int = 2) -> str:
    diff = f"{c['diff']:+.{digits}f}"
    if c["verdict"] == "one seed":
        return f"{diff} (one seed)"
    relation = "within" if c["verdict"] == "within spread" else ">"
    return f"{diff} ({relation} {c['spread']:.{digits}f})"


def claim_table(rows: list[dict]) -> list[str]:
    lines = [
        "| split | hard negatives | vs | seeds | Δ kNN-1 (points) | Δ linear (points) "
        "| Δ MAP@R (x100) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        c = r["cells"]
        lines.append(
            f"| {SPLIT_LABELS[r['split']]} | {r['tilted']} | {r['base']} | {r['seeds']} "
            f"| {_cell(c['knn1_accuracy'])} | {_cell(c['linear_accuracy'])} "
            f"| {_cell(c['map_at_r'])} |"
        )
    return lines


def claim_summary(rows: list[dict]) -> str:
    """One plain sentence counting the comparisons by verdict."""
    cells = [c for r in rows for c in r["cells"].values()]
    if not cells:
        return "No comparison could be made: the runs are missing."
    count = {v: sum(c["verdict"] == v for c in cells) for v in
             ("better", "worse", "within spread", "one seed")}  # fmt: skip
    return (
        f"Of {len(cells)} comparisons (pairs × metrics × splits), hard negatives were better by "
        f"more than the seed spread in {count['better']}, worse by more than the seed spread in "
        f"{count['worse']}, within the seed spread in {count['within spread']}, and "
        f"{count['one seed']} rest on one seed each (no spread to judge them by)."
    )


def diagnostics_table(records: list[dict]) -> list[str]:
    lines = [
        "| split | embeddings | UCL | H-UCL | SCL | H-SCL | H-SCL <= H-UCL (batches) |",
        "|---|---|---|---|---|---|---|",
    ]
    wanted = [("frozen", "frozen"), ("adapter", "supcon"), ("adapter", "hscl (beta=1)"),
              ("finetune", "supcon"), ("finetune", "hscl (beta=1)")]  # fmt: skip
    for split in SPLITS:
        for mode, config in wanted:
            rows = [r for r in group(records, split, mode, config) if r["seed"] == 0]
            if not rows or "diagnostics" not in rows[0]:
                continue
            d = rows[0]["diagnostics"]
            name = "frozen MiniLM" if mode == "frozen" else f"{mode} {config}"
            lines.append(
                f"| {SPLIT_LABELS[split]} | {name} | {d['ucl']:.3f} | {d['hucl']:.3f} "
                f"| {d['scl']:.3f} | {d['hscl']:.3f} | {d['held']} of {d['batches']} |"
            )
    return lines


def inequality_sentence(records: list[dict]) -> str:
    scored = [r for r in records if r.get("diagnostics") and r["seed"] == 0]
    held = sum(r["diagnostics"]["held"] for r in scored)
    total = sum(r["diagnostics"]["batches"] for r in scored)
    if not total:
        return "No diagnostics were computed."
    verdict = (
        "held in every batch"
        if held == total
        else ("failed in every batch" if held == 0 else "held in some batches and not in others")
    )
    where = [
        f"{SPLIT_LABELS[r['split']]} {r['mode']} {r['config']} ({r['diagnostics']['held']} of "
        f"{r['diagnostics']['batches']})"
        for r in scored
        if r["diagnostics"]["held"]
    ]
    held_in = f" It held in: {'; '.join(where)}." if where and held < total else ""
    return (f"The paper's inequality H-SCL <= H-UCL {verdict}: {held} of {total} batches over the "
            f"{len(scored)} seed-0 embeddings scored (every configuration, not only the rows of "
            f"the table).{held_in}")  # fmt: skip


# ----------------------------------------------------------------------------- what to use when


def _best(records: list[dict], split: str, mode: str, metric: str) -> list[tuple[float, str]]:
    ranked = []
    for config in CONFIGS:
        rows = group(records, split, mode, config)
        if rows:
            ranked.append((mean_std(values(rows, metric))[0], config))
    return sorted(ranked, reverse=True)


def what_to_use(records: list[dict], claims: list[dict], fashion: dict | None) -> list[str]:
    """Advice whose conclusions are picked by the numbers of this run (rules fixed in advance)."""
    out = []
    for split in SPLITS:
        ranked = _best(records, split, "adapter", "knn1_accuracy")
        if len(ranked) < 2:
            continue
        (m1, c1), (m2, c2) = ranked[0], ranked[1]
        gap = compare(group(records, split, "adapter", c2), group(records, split, "adapter", c1),
                      "knn1_accuracy")  # fmt: skip
        strength = {"better": "by more than the seed spread",
                    "within spread": "but within the seed spread, so treat them as tied",
                    "one seed": "on one seed, so the order is not settled"}.get(
            gap["verdict"], "")  # fmt: skip
        map_best = _best(records, split, "adapter", "map_at_r")[0]
        order = f"ahead of {c2} ({100 * m2:.2f} %) {strength}" if m1 > m2 else f"tied with {c2}"
        out.append(
            f"- **{SPLIT_LABELS[split]} labels, adapter mode:** {c1} had the highest kNN-1 "
            f"({100 * m1:.2f} %), {order}; for retrieval (MAP@R) {map_best[1]} was highest "
            f"({map_best[0]:.3f})."
        )
    for split in SPLITS:
        frozen = group(records, split, "frozen", "frozen")
        sup = group(records, split, "adapter", "supcon")
        if frozen and sup:
            dk = compare(frozen, sup, "knn1_accuracy")["diff"]
            dm = compare(frozen, sup, "map_at_r", 1.0)["diff"]
            gains = [name for name, d in (("kNN-1", dk), ("MAP@R", dm)) if d > 0]
            if len(gains) == 2:
                verdict = "improved both"
            else:
                verdict = f"improved {gains[0]} only" if gains else "improved neither"
            out.append(
                f"- **Adapter vs frozen ({SPLIT_LABELS[split]}):** the supcon adapter changed "
                f"kNN-1 by {dk:+.2f} points and MAP@R by {dm:+.3f} over the frozen model: it "
                f"{verdict}."
            )
    for split in ("train_5", "train_10", "train"):
        fine = _best(records, split, "finetune", "knn1_accuracy")
        adapt = _best(records, split, "adapter", "knn1_accuracy")
        if not fine or not adapt:
            continue
        (mf, cf), (ma, ca) = fine[0], adapt[0]
        fit_f = statistics.fmean(r["fit_s"] for r in group(records, split, "finetune", cf))
        fit_a = statistics.fmean(r["fit_s"] for r in group(records, split, "adapter", ca))
        verdict = "beat" if mf > ma else "did not beat"
        out.append(
            f"- **Finetune vs adapter ({SPLIT_LABELS[split]}):** the best finetune run ({cf}, "
            f"kNN-1 {100 * mf:.2f} %, {_time(fit_f)} to train) {verdict} the best adapter run "
            f"({ca}, {100 * ma:.2f} %, {_time(fit_a)}); finetune rows here rest on "
            f"{len(group(records, split, 'finetune', cf))} seed(s) and fewer methods."
        )
    cells = [c for r in claims for c in r["cells"].values()]
    if cells:
        better = sum(c["verdict"] == "better" for c in cells)
        worse = sum(c["verdict"] == "worse" for c in cells)
        if better > worse:
            advice = "hard negatives helped more often than they hurt here; worth trying"
        elif worse > better:
            advice = "hard negatives hurt more often than they helped here; keep the defaults"
        else:
            advice = "hard negatives made no difference beyond seed noise here; keep the defaults"
        out.append(
            f"- **Hard negatives (hscl beta > 0, supcon hardness):** {advice} ({better} of "
            f"{len(cells)} comparisons better and {worse} worse by more than the seed spread)."
        )
    for split in SPLITS:
        ce = group(records, split, "adapter", "ce")
        ranked = [x for x in _best(records, split, "adapter", "map_at_r") if x[1] != "ce"]
        if ce and ranked:
            ce_map = mean_std(values(ce, "map_at_r"))[0]
            relation = "above" if ranked[0][0] > ce_map else "not above"
            out.append(
                f"- **Retrieval ({SPLIT_LABELS[split]}):** the best contrastive loss's MAP@R "
                f"({ranked[0][1]}, {ranked[0][0]:.3f}) was {relation} cross-entropy's "
                f"({ce_map:.3f})."
            )
    if fashion and fashion.get("runs"):
        minutes = fashion["budget_minutes"]
        sup = [
            r["knn1"] for r in fashion["runs"] if r["name"] == "supcon" and r["minutes"] == minutes
        ]
        ce = [r["knn1"] for r in fashion["runs"] if r["name"] == "ce" and r["minutes"] == minutes]
        if sup and ce:
            ms, mc = statistics.fmean(sup), statistics.fmean(ce)
            out.append(
                f"- **Images from scratch (Fashion-MNIST, {minutes:g} min each):** supcon kNN-1 "
                f"{100 * ms:.2f} % vs ce {100 * mc:.2f} %: supcon "
                f"{'ahead' if ms > mc else 'not ahead'} at the same budget."
            )
    if not out:
        out.append("- No rule could be applied: the runs it needs are missing.")
    return out


# ----------------------------------------------------------------------------- plots


def plot_banking77(records: list[dict], path: Path) -> None:
    """kNN-1 accuracy and MAP@R per configuration and split, seed std as error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    keys = list(dict.fromkeys((m, c) for _, m, c in _row_keys(records)))
    fig, axes = plt.subplots(2, 1, figsize=(max(8, 0.75 * len(keys) + 2), 8), sharex=True)
    xs = np.arange(len(keys))
    width = 0.8 / len(SPLITS)
    for ax, (metric, label, scale) in zip(
        axes,
        (("knn1_accuracy", "kNN-1 test accuracy (%)", 100), ("map_at_r", "MAP@R", 1)),
        strict=True,
    ):
        for i, split in enumerate(SPLITS):
            means, stds = [], []
            for mode, config in keys:
                rows = group(records, split, mode, config)
                m, s = mean_std(values(rows, metric)) if rows else (math.nan, None)
                means.append(scale * m)
                stds.append(scale * (s or 0.0))
            ax.bar(xs + (i - 1) * width, means, width, yerr=stds, capsize=2,
                   label=SPLIT_LABELS[split])  # fmt: skip
        ax.set_ylabel(label)
        ax.grid(axis="y", lw=0.3)
        finite = [v for v in ax.get_ylim() if math.isfinite(v)]
        if metric == "knn1_accuracy" and finite:
            low = min(scale * r["metrics"][metric] for r in records)
            ax.set_ylim(max(0, low - 5), 100)
    axes[0].legend(fontsize=8, loc="lower left")
    axes[0].set_title("Banking77 test set, all-MiniLM-L6-v2 (error bars: seed std)")
    names = ["frozen" if m == "frozen" else f"{m}: {c}" for m, c in keys]
    axes[1].set_xticks(xs, names, rotation=60, ha="right", fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_claim(rows: list[dict], path: Path) -> None:
    """Difference of mean kNN-1 (tilted minus base) per comparison, the seed spread as a band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 0.45 * max(len(rows), 2) + 1.5))
    labels = [f"{SPLIT_LABELS[r['split']]}: {r['tilted']} - {r['base']}" for r in rows]
    diffs = [r["cells"]["knn1_accuracy"]["diff"] for r in rows]
    spreads = [r["cells"]["knn1_accuracy"]["spread"] or 0.0 for r in rows]
    ys = range(len(rows))
    ax.barh(ys, diffs, xerr=spreads, capsize=3, color=["tab:green" if d > 0 else "tab:red"
                                                       for d in diffs])  # fmt: skip
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(list(ys), labels, fontsize=8)
    ax.set_xlabel("Δ kNN-1 (points); whisker: larger seed std of the two")
    ax.set_title("Hard negatives vs none, Banking77 adapter")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------------------- sections


def link(figure: Path, out: Path) -> str:
    """The figure's path as BENCHMARKS.md (at `out`) links it: relative to out's folder."""
    return Path(os.path.relpath(Path(figure).resolve(), Path(out).resolve().parent)).as_posix()
