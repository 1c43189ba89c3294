"""The tables of benchmarks/results/semi.md from benchmarks/results/semi.jsonl (`semi.py render`).

A run's scores after its supervised stage are those of a fit without the stages after it: the
labelled-only fit (no self-supervised stage) or the self-supervised + supervised fit (with one),
so each run adds a row for its final model and one for its stage-2 model (in finetune mode
with pseudo-labels also one for stage 3, the adapter over the fine-tuned model trained on the
labelled rows); a dedicated run of the same (split, mode, configuration, seed) takes
precedence over a stage-2 score.
"""

from __future__ import annotations

import json
import re
import statistics
from pathlib import Path

BEGIN, END = "<!-- semi-table:begin -->", "<!-- semi-table:end -->"
SPLITS = {"train_5": "5-shot", "train_10": "10-shot"}


def _stage2_name(config: str) -> str:
    method = config.split("+")[0] if "+" in config else None
    return method if method and method not in ("pl",) else "labelled-only"


def results(records: list[dict]) -> dict[tuple, dict]:
    """{(split, mode, config, seed): {"valid": [knn, lin], "test": [...], record...}}."""
    out: dict[tuple, dict] = {}
    for r in records:
        if r.get("pool") == "full":  # valid.csv texts among the unlabelled rows: a row of its own
            key = (r["split"], r["mode"], f"{r['config']}, full pool", r["seed"])
            out[key] = {**r["stages"]["final"], "run": r, "direct": True}
            continue
        key = (r["split"], r["mode"], r["config"], r["seed"])
        out[key] = {**r["stages"]["final"], "run": r, "direct": True}
        inner = {"supervised": (_stage2_name(r["config"]), 2)}
        if "adapter" in r["stages"]:  # finetune mode: the adapter over the fine-tuned model
            inner["adapter"] = (f"{_stage2_name(r['config'])} + adapter", 3)
        for stage, (name, number) in inner.items():
            if stage not in r["stages"]:
                continue
            key2 = (r["split"], r["mode"], name, r["seed"])
            if not out.get(key2, {}).get("direct"):
                out[key2] = {**r["stages"][stage], "run": r, "direct": False, "stage": number}
    return out


def _mean(values: list[float]) -> str:
    values = [100 * v for v in values]
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def table(records: list[dict]) -> str:
    res = results(records)
    groups: dict[tuple, list[dict]] = {}
    for (split, mode, config, _seed), value in sorted(res.items(), key=lambda kv: str(kv[0])):
        mode = "-" if config == "frozen" else mode
        groups.setdefault((split, mode, config), []).append(value)
    lines = [
        "| split | mode | configuration | seeds | valid kNN-1 % | valid linear % | test kNN-1 % "
        "| test linear % | unlabelled rows | pseudo-labelled | run wall / CPU | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (split, mode, config), values in groups.items():
        runs = [v["run"] for v in values]
        direct = [v["run"] for v in values if v["direct"] and config != "frozen"]
        pl = [r.get("rows", {}).get("pseudo_labelled") for r in direct]
        timing = "-"
        if direct:
            wall = statistics.median(r["wall_s"] for r in direct)
            cpu = statistics.median(r["cpu_s"] for r in direct)
            timing = f"{wall / 60:.1f} / {cpu / 60:.1f} min"
        load = "-" if not direct else f"{max(r['load'][0] for r in direct):.1f}"
        lines.append(
            f"| {SPLITS[split]} | {mode} | {_label(config, values)} "
            f"| {len(values)} ({', '.join(str(r['seed']) for r in runs)}) "
            f"| {_mean([v['valid'][0] for v in values])} | {_mean([v['valid'][1] for v in values])} "
            f"| {_mean([v['test'][0] for v in values])} | {_mean([v['test'][1] for v in values])} "
            f"| {0 if config == 'frozen' or config.startswith('labelled-only') else runs[0]['n_unlabelled']} "
            f"| {', '.join(str(p) for p in pl if p is not None) or '-'} | {timing} | {load} |"
        )
    return "\n".join(lines)


def _label(config: str, values: list[dict]) -> str:
    """The configuration, or where in a run its scores were read ("stage 2 of a run")."""
    if all(v["direct"] for v in values):
        return config
    return f"{config} (stage {values[0].get('stage', 2)} of a run)"


def render(jsonl: Path, out: Path) -> None:
    records = [json.loads(line) for line in Path(jsonl).read_text().splitlines() if line.strip()]
    block = f"{BEGIN}\n{table(records)}\n{END}"
    text = out.read_text() if out.is_file() else f"# Semi-supervised refinement\n\n{block}\n"
    if BEGIN in text:
        text = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    out.write_text(text)
    print(block)
