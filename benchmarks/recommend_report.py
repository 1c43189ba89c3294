"""The Markdown section of the recommendation benchmark, from its records (every figure with
the command that produced it, and the targets met or not)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

MODEL = "two-tower"
ID_ONLY = ("most popular", "item-kNN", "BPR-MF")
COLUMNS = (("hr@10", "HR@10"), ("ndcg@10", "NDCG@10"), ("recall@20", "Recall@20"), ("mrr", "MRR"))
TIME_BUDGET_S = 300
BEGIN, END = "<!-- recommend:begin -->", "<!-- recommend:end -->"


def values(records: list[dict], model: str, path: tuple[str, ...]) -> list[float]:
    """The figure at `path` (e.g. ("test", "ndcg@10")) of `model` in each record that has it."""
    out = []
    for record in records:
        node = record["models"].get(model)
        for key in path:
            node = None if node is None else node.get(key)
        if node is not None:
            out.append(float(node))
    return out


def mean_std(xs: list[float], digits: int = 4) -> str:
    if not xs:
        return "n/a"
    if len(xs) == 1:
        return f"{xs[0]:.{digits}f}"
    return f"{np.mean(xs):.{digits}f} ± {np.std(xs, ddof=1):.{digits}f}"


def _low_high(xs: list[float]) -> tuple[float, float]:
    """(mean - std, mean + std): where a result lies within its seed spread (NaN: no runs)."""
    if not xs:
        return float("nan"), float("nan")
    spread = float(np.std(xs, ddof=1)) if len(xs) > 1 else 0.0
    return float(np.mean(xs)) - spread, float(np.mean(xs)) + spread


def _of(records: list[dict], section: str, variant: str | None = None) -> list[dict]:
    return [
        r for r in records
        if r["section"] == section and (variant is None or r.get("variant") == variant)
    ]  # fmt: skip


def main_table(runs: list[dict]) -> list[str]:
    names = [MODEL] + [n for n in runs[0]["models"] if n != MODEL]
    head = " | ".join(label for _, label in COLUMNS)
    lines = [
        f"| model | {head} | coverage@10 | cold HR@10 | cold MRR | fit (s) |",
        "|---" * (len(COLUMNS) + 5) + "|",
    ]
    for name in names:
        cells = [mean_std(values(runs, name, ("test", key))) for key, _ in COLUMNS]
        cells.append(mean_std(values(runs, name, ("test", "coverage@10")), 3))
        cells.append(mean_std(values(runs, name, ("test", "cold", "hr@10"))))
        cells.append(mean_std(values(runs, name, ("test", "cold", "mrr"))))
        cells.append(mean_std(values(runs, name, ("fit_s",)), 1))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def ablation_table(records: list[dict]) -> list[str]:
    lines = [
        "| variant | validation NDCG@10 | test NDCG@10 | test HR@10 | cold MRR | fit (s) | command (seed 0) |",
        "|---|---|---|---|---|---|---|",
    ]
    variants = dict.fromkeys(r["variant"] for r in _of(records, "movielens"))
    for variant in variants:
        runs = _of(records, "movielens", variant)
        cells = [
            mean_std(values(runs, MODEL, ("validation", "ndcg@10"))),
            mean_std(values(runs, MODEL, ("test", "ndcg@10"))),
            mean_std(values(runs, MODEL, ("test", "hr@10"))),
            mean_std(values(runs, MODEL, ("test", "cold", "mrr"))),
            mean_std(values(runs, MODEL, ("fit_s",)), 1),
            f"`{sorted(runs, key=lambda r: r['seed'])[0]['command']}`",
        ]
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    return lines


def coldstart_table(records: list[dict]) -> list[str]:
    runs = _of(records, "coldstart", "default")
    no_text = _of(records, "coldstart", "no item text")
    if not runs:
        return []
    first = runs[0]["models"][MODEL]["test"]
    lines = [
        f"{first['cold']['users']} test users whose test item is one of the "
        f"{runs[0]['cold_items']} items stripped of their training interactions "
        "(`python -m benchmarks.recommend --only coldstart`):",
        "",
        "| model | cold HR@10 | cold NDCG@10 | cold MRR | all users NDCG@10 |",
        "|---|---|---|---|---|",
    ]
    rows = [(f"{MODEL} (item text)", runs, MODEL), (f"{MODEL}, no item text", no_text, MODEL)]
    rows += [(name, runs, name) for name in runs[0]["models"] if name != MODEL]
    for label, rs, name in rows:
        cells = [
            mean_std(values(rs, name, ("test", "cold", k))) for k in ("hr@10", "ndcg@10", "mrr")
        ]
        cells.append(mean_std(values(rs, name, ("test", "ndcg@10"))))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def scale_table(records: list[dict]) -> list[str]:
    runs = sorted(_of(records, "scale"), key=lambda r: r["interactions"])
    if not runs:
        return []
    lines = [
        "| interactions | users | items | steps | one epoch, wall (s) | one epoch, CPU (s) | "
        "CPU s per 1e5 interactions | peak memory (MiB) | load average | command |",
        "|---" * 10 + "|",
    ]
    for r in runs:
        cpu = r.get("epoch_cpu_s", r["epoch_s"])
        lines.append(
            f"| {r['interactions']:,} | {r['users']:,} | {r['items']:,} | {r['steps']:,} | "
            f"{r['epoch_s']:.1f} | {cpu:.1f} | {1e5 * cpu / r['interactions']:.2f} | "
            f"{r['peak_rss_mb']:,.0f} | {r.get('load', float('nan')):.1f} | `{r['command']}` |"
        )
    return lines


def targets(records: list[dict]) -> list[str]:
    runs = _of(records, "movielens", "default")
    lines = []
    for key, label in (("ndcg@10", "NDCG@10"), ("hr@10", "HR@10")):
        low = _low_high(values(runs, MODEL, ("test", key)))[0]
        rivals = {
            n: _low_high(values(runs, n, ("test", key)))[1] for n in runs[0]["models"] if n != MODEL
        }
        best = max(rivals, key=rivals.get)
        met = low > rivals[best]
        lines.append(
            f"- {label} above every baseline beyond the seed spread: **{'met' if met else 'not met'}** "
            f"(two-tower mean − std {low:.4f} against {best}'s mean + std {rivals[best]:.4f})."
        )
    cold = _of(records, "coldstart", "default")
    if cold:
        low = _low_high(values(cold, MODEL, ("test", "cold", "ndcg@10")))[0]
        rivals = {n: _low_high(values(cold, n, ("test", "cold", "ndcg@10")))[1] for n in ID_ONLY}
        no_text = _of(records, "coldstart", "no item text")
        rivals[f"{MODEL}, no item text"] = _low_high(
            values(no_text, MODEL, ("test", "cold", "ndcg@10"))
        )[1]
        rivals = {n: v for n, v in rivals.items() if v == v}  # runs that exist
        best = max(rivals, key=rivals.get)
        met = low > 2 * rivals[best] and low > 0
        lines.append(
            f"- Cold items clearly above the id-only models (taken as: at least twice the best "
            f"id-only cold NDCG@10, beyond the seed spread): **{'met' if met else 'not met'}** "
            f"(two-tower mean − std {low:.4f} against {best}'s mean + std {rivals[best]:.4f})."
        )
    spent = [
        r["timing"]["read_and_embed_s"] + r["timing"]["fit_s"] + r["timing"]["evaluate_s"]
        for r in runs
    ]
    lines.append(
        f"- Training plus evaluation under {TIME_BUDGET_S / 60:.0f} minutes with the defaults: "
        f"**{'met' if max(spent) < TIME_BUDGET_S else 'not met'}** (read and embed + fit + "
        f"evaluate of every model: {mean_std(spent, 1)} s, at most {max(spent):.0f} s; the whole "
        f"command with the report: {mean_std([r['timing']['total_s'] for r in runs], 1)} s)."
    )
    return lines


def render(records: list[dict]) -> str:
    runs = _of(records, "movielens", "default")
    parts = [BEGIN, "## Recommendation (MovieLens 100k, two-tower)", ""]
    if runs:
        r = runs[0]
        parts += [
            f"`{r['command'].replace(' --seed 0', ' --seed S')}` for S = "
            f"{', '.join(str(x['seed']) for x in sorted(runs, key=lambda x: x['seed']))}; "
            f"{r['machine']}, {r['threads']} torch thread(s). Leave-last-out (last rating by time "
            "per user to test, the one before to validation), full ranking over all 1682 films, "
            "the user's rated films left out; mean ± std over the seeds (the split has no seed: "
            "the baselines other than BPR give the same figures every time). Cold: the 16 test "
            "films with <= 5 training ratings.",
            "", *main_table(runs), "", "Targets:", "", *targets(records), "",
            "Ablations (two-tower only, same split):", "", *ablation_table(records), "",
        ]  # fmt: skip
    cold = coldstart_table(records)
    if cold:
        parts += ["Items nobody has rated yet:", "", *cold, ""]
    scale = scale_table(records)
    if scale:
        parts += ["Scale: one training epoch of the default model (batch 1024, one thread) on "
                  "synthetic interactions with Zipf item popularity. The 2 cores were shared with "
                  "other jobs (load average beside each row), so the process's CPU time is the "
                  "figure to compare; wall time is what it took:", "", *scale, ""]  # fmt: skip
    parts.append(END)
    return "\n".join(parts) + "\n"


def write_markdown(records: list[dict], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(records))
