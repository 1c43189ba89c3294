"""The Markdown of benchmarks/search.py, made only from its records (the latest of each)."""

from __future__ import annotations

BEGIN, END = "<!-- search:begin -->", "<!-- search:end -->"
GIB = 1024**3
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
    return list(found.values())


def verdict(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def machine(rows: list[dict]) -> str:
    if not rows:
        return ""
    r = rows[-1]
    return f"_{r['cpu']}, {r['cores']} cores, OMP_NUM_THREADS={r['threads']}, {r['date']}._"


def speed_section(records: list[dict]) -> list[str]:
    rows = latest(records, "speed", "rows", "method")
    if not rows:
        return []
    by = {(r["rows"], r["method"]): r["seconds"] for r in rows}
    out = ["### Exact search: 1000 queries, k = 10, d = 384 (median seconds)", "", machine(rows), "",
           "| rows | contrastkit | faiss IndexFlatIP | ST semantic_search | contrastkit / faiss | ST / contrastkit |",
           "|---|---|---|---|---|---|"]  # fmt: skip
    for n in sorted({r["rows"] for r in rows}):
        ck, fa, st = (by.get((n, m)) for m in SPEED_METHODS)
        if None in (ck, fa, st):
            continue
        out.append(f"| {n:,} | {ck:.3f} | {fa:.3f} | {st:.3f} | {ck / fa:.2f}x | {st / ck:.1f}x |")
    return out + [""]


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
                "| kind | build s | search s | speed-up | recall@10 | nprobe | bytes a row | MiB per million rows |",
                "|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for r in group:
            out.append(
                f"| {r['kind']} | {r['build_seconds']:.1f} | {r['seconds']:.3f} | "
                f"{flat['seconds'] / r['seconds']:.1f}x | {r['recall_at_10']:.4f} | {r['nprobe']} | "
                f"{r['bytes_per_row']:.0f} | {r['bytes_per_row'] * 1e6 / 2**20:.0f} |"
            )
        ivf = next((r for r in group if r["kind"] == "ivf"), None)
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
           "| M | efSearch | build s | search s | recall@10 | bytes a row |", "|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        out.append(f"| {r['M']} | {r['ef_search']} | {r['build_seconds']:.1f} | {r['seconds']:.3f} | "
                   f"{r['recall_at_10']:.4f} | {r['bytes_per_row']:.0f} |")  # fmt: skip
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
        ok = r["seconds"] <= 600 and gib <= 4 and r["pair_recall"] >= 0.95
        cpu = r.get("cpu_seconds")
        load = r.get("load_average")
        out += [f"### `contrastkit dedup` at {r['rows']:,} rows (d = 384, threshold {r['threshold']})", "",
                machine([r]), "",
                "| wall s | CPU s | peak memory (GiB, data included) | pairs | pair recall vs exact | pair precision | subset rows |",
                "|---|---|---|---|---|---|---|",
                f"| {r['seconds']:.0f} | {'' if cpu is None else f'{cpu:.0f}'} | {gib:.2f} | {r['pairs']:,} | "
                f"{r['pair_recall']:.4f} | {r['pair_precision']:.4f} | {r['subset_rows']:,} ({r['subset_exact_pairs']:,} exact pairs) |",
                "", f"Target (<= 10 min, <= 4 GiB, pair recall >= 0.95): {verdict(ok)}."
                + ("" if load is None else f" Load average at the end: {load[0]:.1f} on {r['cores']} cores."), ""]  # fmt: skip
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
                cells.append("over 600" if r["failed"] == "time limit" else "failed")
            else:
                cells.append(f"{r['seconds']:.1f}")
        out.append(f"| {method} | " + " | ".join(cells) + " |")
    return out + [""]


def quality_section(records: list[dict]) -> list[str]:
    out = []
    b77 = latest(records, "banking77", "model")
    if b77:
        out += ["### Banking77 search: queries test.csv, corpus train.csv, relevant = same intent", "",
                machine(b77), "", "| model | Recall@1 | Recall@10 | MRR@10 | nDCG@10 |", "|---|---|---|---|---|"]  # fmt: skip
        for r in b77:
            out.append(f"| {r['model']} | {r['recall_at_1']:.4f} | {r['recall_at_10']:.4f} | "
                       f"{r['mrr_at_10']:.4f} | {r['ndcg_at_10']:.4f} |")  # fmt: skip
        out += [
            "",
            "Recall@k here is the hit rate: a query counts when one of its first k hits has its intent.",
            "",
        ]
    mrpc = latest(records, "mrpc", "model")
    if mrpc:
        out += ["### MRPC duplicates: threshold calibrated on train pairs, scored on test pairs", "",
                machine(mrpc), "", "| model | threshold | AP | F1 | precision | recall | accuracy |",
                "|---|---|---|---|---|---|---|"]  # fmt: skip
        for r in mrpc:
            out.append(f"| {r['model']} | {r['threshold']:.4f} | {r['average_precision']:.4f} | {r['f1']:.4f} | "
                       f"{r['precision']:.4f} | {r['recall']:.4f} | {r['accuracy']:.4f} |")  # fmt: skip
        out.append("")
    return out


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
