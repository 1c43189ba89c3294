"""The Markdown of benchmarks/search.py, made only from its records (the latest of each)."""

from __future__ import annotations

BEGIN, END = "<!-- search:begin -->", "<!-- search:end -->"
GIB = 1024**3
FROZEN = "frozen all-MiniLM-L6-v2"
SPEED_METHODS = (
    "contrastkit SearchIndex (flat)",
    "faiss IndexFlatIP",
    "sentence-transformers semantic_search",
)


def latest(records: list[dict], bench: str, *keys: str) -> list[dict]:
    """The last record of `bench` for each value of `keys`, in first-seen order."""
    found: dict[tuple, dict] = {}
    for record in records:
        if record.get("bench") == bench:
            found[tuple(record.get(k) for k in keys)] = record
    # A model scored under a name replaces its earlier records named by its path.
    named = {r["model_path"] for r in found.values() if r.get("model_path")}
    if any(r.get("model") == FROZEN for r in found.values()):
        named.add("frozen")
    return [r for r in found.values() if r.get("model") not in named]


def verdict(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def machine(rows: list[dict]) -> str:
    if not rows:
        return ""
    r = rows[-1]
    return f"_{r['cpu']}, {r['cores']} cores, OMP_NUM_THREADS={r['threads']}, {r['date']}._"


def _cpu(r: dict | None) -> str:
    return "" if r is None or r.get("cpu_seconds") is None else f"{r['cpu_seconds']:.1f}"


def _loads(rows: list[dict]) -> str:
    """The 1-minute load averages the records saw, as a range."""
    loads = []
    for r in rows:
        value = r.get("load_average")
        loads += value if isinstance(value, list) and r.get("interleaved") else [value]
    loads = [v[0] if isinstance(v, list | tuple) else v for v in loads if v is not None]
    if not loads:
        return ""
    return f" 1-minute load average {min(loads):.1f}-{max(loads):.1f} on {rows[-1]['cores']} cores."


def speed_section(records: list[dict]) -> list[str]:
    rows = latest(records, "speed", "rows", "method")
    if not rows:
        return []
    by = {(r["rows"], r["method"]): r for r in rows}
    out = ["### Exact search: 1000 queries, k = 10, d = 384 (median seconds)", "", machine(rows), "",
           "| rows | contrastkit | faiss IndexFlatIP | ST semantic_search | contrastkit / faiss | ST / contrastkit | CPU s (ck / faiss / ST) | runs |",
           "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for n in sorted({r["rows"] for r in rows}):
        ck, fa, st = (by.get((n, m)) for m in SPEED_METHODS)
        if None in (ck, fa, st):
            continue
        how = "taking turns" if ck.get("interleaved") else "one method after another"
        cpu = " / ".join(_cpu(r) for r in (ck, fa, st)) if ck.get("cpu_seconds") else "-"
        out.append(f"| {n:,} | {ck['seconds']:.3f} | {fa['seconds']:.3f} | {st['seconds']:.3f} | "
                   f"{ck['seconds'] / fa['seconds']:.2f}x | {st['seconds'] / ck['seconds']:.2f}x | "
                   f"{cpu} | {len(ck['runs'])}, {how} |")  # fmt: skip
    return out + ["", "Medians of the runs; each method's runs are timed in the same process and "
                  "run, so the ratios share the machine's state." + _loads(rows), ""]  # fmt: skip


def approx_section(records: list[dict]) -> list[str]:
    rows = latest(records, "approx", "rows", "kind")
    out = []
    for n in sorted({r["rows"] for r in rows}, reverse=True):
        group = [r for r in rows if r["rows"] == n]
        flat = next((r for r in group if r["kind"] == "flat"), None)
        if flat is None:
            continue
        out += [f"### Approximate against exact at {n:,} rows (1000 held-out queries, k = 10)", "",
                machine(group), "",
                "| kind | build s (CPU s) | search s (CPU s) | speed-up | recall@10 | nprobe | bytes a row | GiB per million rows |",
                "|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for r in group:
            build_cpu = r.get("build_cpu_seconds")
            out.append(
                f"| {r['kind']} | {r['build_seconds']:.1f}"
                + ("" if build_cpu is None else f" ({build_cpu:.0f})")
                + f" | {r['seconds']:.3f}" + ("" if r.get("cpu_seconds") is None else f" ({_cpu(r)})")
                + f" | {flat['seconds'] / r['seconds']:.1f}x | {r['recall_at_10']:.4f} | "
                f"{r['nprobe']} | {r['bytes_per_row']:.0f} | {r['bytes_per_row'] * 1e6 / GIB:.3f} |"
            )  # fmt: skip
        ivf = next((r for r in group if r["kind"] == "ivf"), None)
        out += ["", "Search: median of the runs; bytes a row: the index as faiss saves it (what it "
                "holds in memory: codes, ids and, for IVF, the cell centroids), divided by the rows; "
                "nprobe: tuned at build time to recall@10 0.95 on a sample of the indexed rows."
                + _loads(group)]  # fmt: skip
        if ivf is not None and n >= 1_000_000:
            speedup = flat["seconds"] / ivf["seconds"]
            ok = speedup >= 10 and ivf["recall_at_10"] >= 0.95
            out += ["", f"Target (ivf, the automatic choice here: >= 10x faster, recall@10 >= 0.95): "
                        f"{speedup:.1f}x, {ivf['recall_at_10']:.4f}: {verdict(ok)}."]  # fmt: skip
        out.append("")
    return out


def hnsw_section(records: list[dict]) -> list[str]:
    rows = latest(records, "hnsw", "rows", "M", "ef_search")
    if not rows:
        return []
    out = [f"### HNSW (faiss, not offered) at {rows[0]['rows']:,} rows", "", machine(rows), "",
           "| M | efSearch | build s (CPU s) | search s (CPU s) | recall@10 | bytes a row |", "|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        build_cpu = "" if r.get("build_cpu_seconds") is None else f" ({r['build_cpu_seconds']:.0f})"
        cpu = "" if r.get("cpu_seconds") is None else f" ({_cpu(r)})"
        out.append(f"| {r['M']} | {r['ef_search']} | {r['build_seconds']:.1f}{build_cpu} | "
                   f"{r['seconds']:.3f}{cpu} | {r['recall_at_10']:.4f} | {r['bytes_per_row']:.0f} |")  # fmt: skip
    return out + ["", "faiss cannot remove rows from an HNSW graph; compare with the ivf row of "
                  "the table at the same size above.", ""]  # fmt: skip


def dedup_section(records: list[dict]) -> list[str]:
    rows = latest(records, "dedup", "rows")
    out = []
    for r in rows:
        if "failed" in r:
            out += [f"### Dedup at {r['rows']:,} rows: failed ({r['failed'][:200]})", ""]
            continue
        gib = r["peak_rss_bytes"] / GIB
        cpu = r.get("cpu_seconds")
        load = r.get("load_average")
        checks = [
            ("wall time <= 600 s", r["seconds"] <= 600, f"{r['seconds']:.0f} s"),
            ("peak memory <= 4 GiB", gib <= 4, f"{gib:.2f} GiB"),
            ("pair recall >= 0.95", r["pair_recall"] >= 0.95, f"{r['pair_recall']:.4f}"),
        ]
        out += [f"### `contrastkit dedup` at {r['rows']:,} rows (d = 384, threshold {r['threshold']})", "",
                machine([r]), "",
                "| wall s | CPU s | peak memory (GiB, data included) | pairs | pair recall vs exact | pair precision | subset rows |",
                "|---|---|---|---|---|---|---|",
                f"| {r['seconds']:.0f} | {'' if cpu is None else f'{cpu:.0f}'} | {gib:.2f} | {r['pairs']:,} | "
                f"{r['pair_recall']:.4f} | {r['pair_precision']:.4f} | {r['subset_rows']:,} ({r['subset_exact_pairs']:,} exact pairs) |",
                "", "Targets: " + "; ".join(f"{name}: {value}, {verdict(ok)}" for name, ok, value in checks) + "."
                + ("" if load is None else f" Load average at the end: {load[0]:.1f} (1 min), {load[1]:.1f} (5 min), "
                   f"{load[2]:.1f} (15 min) on {r['cores']} cores: the command used "
                   f"{cpu / r['seconds']:.2f} cores on average."), ""]  # fmt: skip
    return out


def mining_section(records: list[dict]) -> list[str]:
    rows = latest(records, "mining", "rows", "method")
    if not rows:
        return []
    out = ["### Duplicate mining: sentence-transformers against contrastkit (seconds)", "", machine(rows), "",
           "| method | " + " | ".join(f"{n:,}" for n in sorted({r['rows'] for r in rows})) + " |",
           "|---|" + "---|" * len({r["rows"] for r in rows})]  # fmt: skip
    sizes = sorted({r["rows"] for r in rows})
    for method in dict.fromkeys(r["method"] for r in rows):
        cells = []
        for n in sizes:
            r = next((r for r in rows if r["method"] == method and r["rows"] == n), None)
            if r is None:
                cells.append("")
            elif r.get("skipped"):
                cells.append(f"not run (predicted {r['predicted_seconds']:.0f})")
            elif "failed" in r:
                cells.append("stopped at 660 s" if r["failed"] == "time limit" else "failed")
            else:
                cells.append(f"{r['seconds']:.1f}")
        out.append(f"| {method} | " + " | ".join(cells) + " |")
    return out + ["", "sentence-transformers runs in a child process stopped at 660 s; a size is not "
                  "run when the time of the size before, times the square of the growth in rows, "
                  "passes 600 s. contrastkit find_duplicates is exact (flat) up to 200,000 rows; "
                  "its 1,000,000 rows are the dedup table above." + _loads(rows), ""]  # fmt: skip


def quality_section(records: list[dict]) -> list[str]:
    out = []
    b77 = latest(records, "banking77", "model")
    if b77:
        out += ["### Banking77 search: queries test.csv, corpus train.csv, relevant = same intent", "",
                machine(b77), "", "| model | Recall@1 | Recall@10 | MRR@10 | nDCG@10 |", "|---|---|---|---|---|"]  # fmt: skip
        for r in b77:
            out.append(f"| {r['model']} | {r['recall_at_1']:.4f} | {r['recall_at_10']:.4f} | "
                       f"{r['mrr_at_10']:.4f} | {r['ndcg_at_10']:.4f} |")  # fmt: skip
        out += ["", "Recall@k here is the hit rate: a query counts when one of its first k hits has "
                "its intent. Scored with `python -m benchmarks.search --only banking77 --model frozen "
                "--model 'NAME=RUN/model' ...`.", "", *_made_by(b77)]  # fmt: skip
    mrpc = latest(records, "mrpc", "model")
    if mrpc:
        out += ["### MRPC duplicates: threshold calibrated on train pairs, scored on test pairs", "",
                machine(mrpc), "", "| model | threshold | AP | F1 | precision | recall | accuracy |",
                "|---|---|---|---|---|---|---|"]  # fmt: skip
        for r in mrpc:
            out.append(f"| {r['model']} | {r['threshold']:.4f} | {r['average_precision']:.4f} | {r['f1']:.4f} | "
                       f"{r['precision']:.4f} | {r['recall']:.4f} | {r['accuracy']:.4f} |")  # fmt: skip
        out += ["", "Scored with `python -m benchmarks.search --only mrpc --model frozen --model "
                "'NAME=RUN/model'`.", "", *_made_by(mrpc)]  # fmt: skip
    return out


def _made_by(rows: list[dict]) -> list[str]:
    """A line per refined model: the command that made it."""
    made = [f"- {r['model']}: `{r['made_by']}`" for r in rows if r.get("made_by")]
    return ["Refined models:", "", *made, ""] if made else []


def render(records: list[dict]) -> str:
    body = ["## Search and duplicates", "",
            "`python -m benchmarks.search` (parts: `--only speed,approx,hnsw,dedup,mining,banking77,mrpc`); "
            "synthetic rows are clustered unit vectors (benchmarks/search_data.py).", ""]  # fmt: skip
    for section in (
        speed_section,
        approx_section,
        hnsw_section,
        dedup_section,
        mining_section,
        quality_section,
    ):
        body += section(records)
    return f"{BEGIN}\n" + "\n".join(body).rstrip() + f"\n{END}\n"
