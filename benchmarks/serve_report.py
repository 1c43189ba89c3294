"""The Markdown of the serve load test (benchmarks/serve_load.py)."""

from __future__ import annotations


def _ms(seconds) -> str:
    return "–" if seconds is None else f"{seconds * 1000:.0f} ms"


def _errors(record: dict) -> str:
    return ", ".join(f"{n} × {status}" for status, n in sorted(record["errors"].items())) or "0"


def efficiency(s: dict, b: dict | None, by: dict) -> str:
    values = [s["per_cpu_s"], b["per_cpu_s"] if b else None, by[("offline", None)]["per_cpu_s"]]
    return ", ".join("–" if v is None else f"{v:.0f}" for v in values)


def render(meta: dict, records: list[dict], args) -> str:
    by = {(r["part"], r.get("clients")): r for r in records}
    offline = by[("offline", None)]["throughput"]
    ours = by.get(("offline-contrastkit", None))
    every = by.get(("offline-all-cores", None))
    levels = sorted(c for part, c in by if part == "serve")
    lines = [
        "# contrastkit serve under load",
        "",
        f"- date: {meta['date']}; machine: {meta['cpu']}, {meta['cores']} cores, **shared with "
        f"other jobs** (load average {meta['load_at_start'][0]:.1f} at the start, "
        f"{meta['load_at_end'][0]:.1f} at the end; each row gives it before and after)",
        f"- model: the shipped all-MiniLM-L6-v2 on CPU, {meta['threads']} torch thread(s) in every "
        "process (the service runs one encoder worker per core, `--workers`); requests: one "
        "Banking77 test question each, POST /v1/embeddings",
        f"- command: `{meta['command']}`; {args.seconds:g} s per level; the clients run in one "
        "process on the same machine (asyncio, one keep-alive connection each, a lean HTTP/1.1 "
        "client); CPU seconds used by the server and the "
        "clients are given for each level",
        f"- offline batched `SentenceTransformer.encode` (batch 32): **{offline:.1f} texts/s**, "
        f"{by[('offline', None)]['per_cpu_s']:.1f} texts per CPU second"
        + (
            "; contrastkit's own offline encode (texts packed in rows of 256 tokens, the path the "
            f"server uses): **{ours['throughput']:.1f} texts/s**, {ours['per_cpu_s']:.1f} per CPU second"
            if ours
            else ""
        )
        + (
            f"; sentence-transformers' offline encode on all {every['threads']} cores (torch "
            f"threads): **{every['throughput']:.1f} texts/s**"
            if every
            else ""
        ),
        "- the machine is shared, so a process gets the CPU share the others leave it; "
        "**texts per CPU second** (of the server process; of this process for offline) "
        "compares the work each way needs, whatever share it got",
        "",
        "| clients | serve req/s | p50 | p99 | errors | baseline req/s | p50 | p99 | errors "
        "| serve / baseline | serve / offline | serve / contrastkit offline "
        "| texts per CPU s: serve, baseline, offline "
        "| CPU s: server, clients (serve; baseline) | load avg |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in levels:
        s, b = by[("serve", c)], by.get(("baseline", c))
        ratio = f"{s['throughput'] / b['throughput']:.1f}x" if b and b["throughput"] else "–"
        base = (
            [f"{b['throughput']:.1f}", _ms(b["p50_s"]), _ms(b["p99_s"]), _errors(b)]
            if b else ["–"] * 4
        )  # fmt: skip
        cpu = f"{s['server_cpu_s']:.0f}, {s['client_cpu_s']:.0f}"
        versus_ours = f"{s['throughput'] / ours['throughput']:.0%}" if ours else "–"
        if b:
            cpu += f"; {b['server_cpu_s']:.0f}, {b['client_cpu_s']:.0f}"
        lines.append(
            f"| {c} | {s['throughput']:.1f} | {_ms(s['p50_s'])} | {_ms(s['p99_s'])} | {_errors(s)} | "
            + " | ".join(base)
            + f" | {ratio} | {s['throughput'] / offline:.0%} | {versus_ours} "
            f"| {efficiency(s, b, by)} | {cpu} "
            f"| {s['load_before']:.1f} → {s['load_after']:.1f} |"
        )
    small = [r for r in records if r["part"] == "serve-small-queue"]
    for r in small:
        others = {k: v for k, v in r["errors"].items() if k != "429"}
        lines += [
            "",
            f"Above the queue: {r['clients']} clients against `--max-queue {args.small_queue}` "
            f"for {r['seconds']:.0f} s: {r['ok']} answered 200 ({r['throughput']:.1f} req/s, p99 "
            f"{_ms(r['p99_s'])}), {r['errors'].get('429', 0)} answered 429 (p50 "
            f"{_ms(r.get('p50_429_s'))}, p99 {_ms(r.get('p99_429_s'))}), other errors: "
            f"{sum(others.values())}.",
        ]
    soaks = [r for r in records if r["part"] == "soak"]
    for r in soaks:
        rss = r["rss_mb"]
        lines += [
            "",
            f"Memory soak: {r['clients']} clients for {r['seconds']:.0f} s ({r['ok']} requests, "
            f"errors: {_errors(r)}): the server's RSS went from {rss[0]:.0f} MB to {rss[-1]:.0f} MB "
            f"(min {min(rss):.0f}, max {max(rss):.0f}); the median of the last minute is "
            f"{r['rss_growth']:+.1%} against the first minute's.",
        ]
    return "\n".join(lines) + "\n"
