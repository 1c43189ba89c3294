"""Loss kernel benchmark: forward + backward time and peak memory growth against the peers.

    python benchmarks/losses.py --out BENCHMARKS.md            # the full table (make bench)
    python benchmarks/losses.py --quick                        # small N, a minute or so
    python benchmarks/losses.py --device cuda --out BENCHMARKS.md

For N in 512 ... 65536 rows (d = 128, 100 classes) it times contrastkit's supcon, hscl and
nt_xent, pytorch-metric-learning's SupConLoss and NTXentLoss, a plain full-matrix SupCon
(logsumexp) and the bare matrix products every such loss needs (S = Z Z^T, S Z, S^T Z).

Each case runs in a fresh child process, launched from this parent, which never imports torch,
so the child's peak RSS (ru_maxrss) is its own. Memory growth = peak RSS - RSS once the inputs
exist (on CUDA: peak allocated - allocated then). Each child gets an address-space limit
(RLIMIT_AS) and a time limit, so a case that asks for more memory than the machine has is
recorded as "out of memory" instead of taking the machine down. A case whose measured growth
or time at the previous N, scaled by (N / N_prev)^2, already exceeds a limit is recorded
without running. The table goes into a section of --out between the markers below, so other
benchmark sections can share the file.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import re
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

# Run as a script (`python benchmarks/<name>.py`), the repository root is not on the path.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.machine import cpu_model  # noqa: E402
from benchmarks.markdown import write_section  # noqa: E402


def _markers(device: str) -> tuple[str, str]:
    """The CPU and the CUDA tables live in sections of their own."""
    name = "losses-cuda" if device.startswith("cuda") else "losses"
    return f"<!-- {name}:begin -->", f"<!-- {name}:end -->"


SIZES = [512, 2048, 8192, 16384, 32768, 65536]
QUICK_SIZES = [256, 512, 1024, 2048]
DIM, CLASSES, REPEATS = 128, 100, 5
# Timed calls stop once this many seconds are measured (at least one call): a call that takes
# seconds varies by a few per cent, and at N=65536 three of them would cost minutes per case.
MEASURE_S = 10.0
GIB = 2**30

# (key, label in the table)
CASES = [
    ("ck_supcon", "contrastkit `supcon` (t=0.1)"),
    ("ck_hscl", "contrastkit `hscl` (t=0.5, beta=1)"),
    ("ck_nt_xent", "contrastkit `nt_xent` (N/2 pairs)"),
    ("pml_supcon", "PML `SupConLoss`"),
    ("pml_ntxent", "PML `NTXentLoss` (class labels)"),
    ("plain_supcon", "plain full-matrix SupCon (logsumexp)"),
    ("bare", "bare products S = ZZ^T, SZ, S^TZ"),
]


# ----------------------------------------------------------------------------- child side


def _plain_supcon(x, labels, temperature: float = 0.1):
    """SupCon L_out as most code writes it: the whole N x N logit matrix, one logsumexp."""
    import torch
    import torch.nn.functional as F

    z = F.normalize(x, dim=1)
    logits = z @ z.T / temperature
    eye = torch.eye(len(labels), dtype=torch.bool, device=x.device)
    logits = logits.masked_fill(eye, float("-inf"))
    positive = (labels[:, None] == labels[None, :]) & ~eye
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    n_pos = positive.sum(1)
    mean_log_prob = torch.where(positive, log_prob, 0.0).sum(1) / n_pos.clamp(min=1)
    return -mean_log_prob[n_pos > 0].mean()


def _build(case: str, x, labels):
    """A callable doing one forward + backward of the case."""
    import torch
    import torch.nn.functional as F

    if case == "bare":
        z = F.normalize(x.detach(), dim=1)

        def products():
            s = torch.mm(z, z.T)
            torch.mm(s, z)
            torch.mm(s.T, z)

        return products
    if case.startswith("ck_"):
        import contrastkit.losses as L

        half = x.shape[0] // 2
        loss_fn = {
            "ck_supcon": lambda: L.supcon(x, labels, temperature=0.1),
            "ck_hscl": lambda: L.hscl(x, labels, temperature=0.5, beta=1.0),
            "ck_nt_xent": lambda: L.nt_xent(x[:half], x[half:], temperature=0.5),
        }[case]
    elif case.startswith("pml_"):
        from pytorch_metric_learning import losses as pml

        module = pml.SupConLoss(temperature=0.1) if case == "pml_supcon" else pml.NTXentLoss(0.5)

        def loss_fn():
            return module(x, labels)

    else:
        loss_fn = lambda: _plain_supcon(x, labels)  # noqa: E731

    def step():
        loss_fn().backward()
        x.grad = None

    return step


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _oom_message(error: BaseException) -> str | None:
    text = str(error)
    if isinstance(error, MemoryError) or "out of memory" in text.lower() or "allocate" in text:
        asked = re.search(r"allocate (\d+) bytes", text)
        return f"asks {int(asked.group(1)) / 1e9:.0f} GB" if asked else "out of memory"
    return None


def run_child(case: str, n: int, device: str, repeats: int, measure_s: float = MEASURE_S) -> dict:
    import torch

    torch.manual_seed(0)
    cuda = device.startswith("cuda")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    info = {"torch": torch.__version__, "threads": torch.get_num_threads()}
    if cuda:
        info["gpu"] = torch.cuda.get_device_name()
    try:
        x = torch.randn(n, DIM, device=device).requires_grad_(True)
        labels = torch.randint(0, CLASSES, (n,), device=device)
        step = _build(case, x, labels)
        sync()
        if cuda:
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
        else:
            base = _rss_bytes()
        if n < 16384 or cuda:  # warm-up; on a CPU at large N one call's set-up is noise
            step()
            sync()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            step()
            sync()
            times.append(time.perf_counter() - start)
            if sum(times) >= measure_s:
                break
        if cuda:
            peak = torch.cuda.max_memory_allocated()
        else:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    except (RuntimeError, MemoryError) as error:
        message = _oom_message(error)
        if message is None:
            raise
        return {**info, "status": "oom", "detail": message}
    times.sort()
    return {
        **info,
        "status": "ok",
        "median_s": times[len(times) // 2],
        "times_s": times,
        "growth_bytes": max(0, peak - base),
    }


# ----------------------------------------------------------------------------- parent side


def _mem_available() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def _launch(case: str, n: int, args, memory_limit: int) -> dict:
    command = [sys.executable, __file__, "--child", case, str(n), args.device, str(args.repeats),
               str(args.measure_seconds)]  # fmt: skip
    cuda = args.device.startswith("cuda")

    def limits():  # in the child, before exec: the CUDA driver needs its address space
        os.setsid()
        if not cuda:
            resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))

    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.setdefault("PYTHONWARNINGS", "ignore")
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=limits,
    )
    try:
        out, err = proc.communicate(timeout=args.timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return {"status": "timeout", "detail": f"> {args.timeout:.0f} s"}
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if proc.returncode == 0 and lines:
        return json.loads(lines[-1])
    if proc.returncode in (-signal.SIGKILL, 137):
        return {"status": "oom", "detail": "killed (out of memory)"}
    if "MemoryError" in err or "can't allocate memory" in err or "bad_alloc" in err:
        return {"status": "oom", "detail": "out of memory"}
    tail = err.strip().splitlines()[-1] if err.strip() else f"exit code {proc.returncode}"
    return {"status": "error", "detail": tail}


def _predicted_skip(previous: dict | None, n_prev: int, n: int, args, memory_limit: int):
    """Result to record without running when the N^2 extrapolation of the last size fails."""
    if previous is None:
        return None
    if previous["status"] in ("oom", "timeout"):
        first = previous.get("first_n", n_prev)
        return {"status": previous["status"], "detail": f"already at N={first}", "first_n": first}
    if previous["status"] != "ok":
        return None
    grow = (n / n_prev) ** 2
    if previous["growth_bytes"] * grow > memory_limit and previous["growth_bytes"] > 64 * 2**20:
        need = previous["growth_bytes"] * grow / GIB
        return {"status": "oom", "detail": f"needs ~{need:.0f} GiB, not run"}
    per_call = previous["median_s"] * grow
    runs = min(args.repeats, max(1, math.ceil(args.measure_seconds / per_call)))
    if per_call * (runs + (1 if n < 16384 else 0)) > args.timeout:
        return {
            "status": "timeout",
            "detail": f"~{per_call:.0f} s per call, not run",
        }
    return None


def _format_bytes(b: float) -> str:
    if b >= GIB:
        return f"{b / GIB:.2f} GiB"
    return f"{b / 2**20:.0f} MiB"


def _cell(result: dict | None) -> str:
    if result is None:
        return "-"
    if result["status"] == "ok":
        return f"{result['median_s']:.3g} s / {_format_bytes(result['growth_bytes'])}"
    label = {"oom": "out of memory", "timeout": "timeout", "error": "error"}[result["status"]]
    return f"{label} ({result['detail']})" if result.get("detail") else label


def _ratios(results: dict, sizes: list[int]) -> list[str]:
    lines = []

    def ok(case, n):
        r = results.get(case, {}).get(n)
        return r if r and r["status"] == "ok" else None

    n = 8192 if 8192 in sizes else sizes[-1]
    ck, pml, bare = ok("ck_supcon", n), ok("pml_supcon", n), ok("bare", n)
    if ck and pml:
        speed = pml["median_s"] / ck["median_s"]
        memory = ck["growth_bytes"] / max(pml["growth_bytes"], 1)
        lines.append(
            f"- supcon at N={n}: {speed:.1f}x faster than PML SupConLoss (target >= 2x), "
            f"memory growth {memory:.3f} of PML's, i.e. 1/{1 / max(memory, 1e-9):.0f} "
            "(target <= 1/20)."
        )
    if ck and bare:
        lines.append(
            f"- supcon at N={n}: {ck['median_s'] / bare['median_s']:.2f}x the time of the bare "
            "matrix products (target <= 2x)."
        )
    big = max(sizes)
    r = ok("ck_supcon", big)
    if r:
        lines.append(
            f"- supcon at N={big}: {r['median_s']:.3g} s, memory growth "
            f"{_format_bytes(r['growth_bytes'])} (target <= 2 GiB)."
        )
    return lines


def _section(results: dict, sizes: list[int], meta: dict) -> str:
    header = "| loss | " + " | ".join(f"N={n}" for n in sizes) + " |"
    rule = "|---|" + "---|" * len(sizes)
    rows = [
        f"| {label} | " + " | ".join(_cell(results[key].get(n)) for n in sizes) + " |"
        for key, label in CASES
    ]
    memory_kind = (
        "peak GPU memory allocated minus allocated once the inputs exist"
        if meta["device"].startswith("cuda")
        else "peak RSS (ru_maxrss of the child) minus RSS once the inputs exist"
    )
    begin, end = _markers(meta["device"])
    on_cuda = " on CUDA" if meta["device"].startswith("cuda") else ""
    parts = [
        begin,
        f"## Loss kernels{on_cuda}: time and memory",
        "",
        f"Forward + backward, median of {meta['repeats']} calls, or of fewer once "
        f"{meta['measure_seconds']:g} s were timed (one warm-up call first below N=16384), "
        f"and memory growth ({memory_kind}); d={DIM}, {CLASSES} classes, float32, "
        "each case in a fresh process. nt_xent gets N rows as N/2 two-view pairs; PML NTXentLoss "
        "gets the class labels, as in ANCHORS.md.",
        "",
        header,
        rule,
        *rows,
        "",
        "Against the targets:",
        "",
        *(_ratios(results, sizes) or ["- (not enough sizes ran to compute the ratios)"]),
        "",
        f"Machine: {meta['cpu']}, {meta['cores']} cores"
        + (f", GPU {meta['gpu']}" if "gpu" in meta else "")
        + f", torch {meta['torch']} "
        f"({meta['threads']} threads), Python {platform.python_version()}, device {meta['device']}; "
        f"each child limited to {meta['memory_limit'] / GIB:.1f} GiB of address space and "
        f"{meta['timeout']:.0f} s. Run {meta['date']} in {meta['wall_s'] / 60:.1f} min; other "
        "work shared the machine's cores, so timings carry noise; ratios compare cases of one run.",
        "",
        f"Command: `{meta['command']}` (`make bench` runs "
        "`.venv/bin/python benchmarks/losses.py --out BENCHMARKS.md`).",
        end,
    ]
    return "\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, help="markdown file to write the section into")
    parser.add_argument("--quick", action="store_true", help=f"N in {QUICK_SIZES} only")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--repeats", type=int, default=REPEATS)
    parser.add_argument(
        "--measure-seconds",
        type=float,
        default=MEASURE_S,
        help="stop timing a case once this many seconds are measured (at least one call)",
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per case")
    parser.add_argument(
        "--memory-limit-gib",
        type=float,
        default=20.0,
        help="address-space limit per case (capped at 3/4 of the memory available at start)",
    )
    parser.add_argument("--only", help="comma-separated case keys (default: all)")
    parser.add_argument(
        "--child",
        nargs=5,
        metavar=("CASE", "N", "DEVICE", "REPEATS", "SECONDS"),
        help=argparse.SUPPRESS,
    )
    args = parser.parse_args(argv)

    if args.child:
        case, n, device, repeats, seconds = args.child
        result = run_child(case, int(n), device, int(repeats), float(seconds))
        print(json.dumps(result), flush=True)
        return 0

    started = time.time()
    sizes = QUICK_SIZES if args.quick else SIZES
    # never let a child take memory the machine does not have: others may be working on it
    memory_limit = int(min(args.memory_limit_gib * GIB, max(0.75 * _mem_available(), 2 * GIB)))
    keys = args.only.split(",") if args.only else [key for key, _ in CASES]
    results: dict[str, dict[int, dict]] = {key: {} for key, _ in CASES}
    meta = {"torch": "?", "threads": "?"}
    for key in keys:
        previous, n_prev = None, 0
        for n in sizes:
            result = _predicted_skip(previous, n_prev, n, args, memory_limit)
            if result is None:
                result = _launch(key, n, args, memory_limit)
            if "torch" in result:
                meta.update(torch=result["torch"], threads=result["threads"])
                if "gpu" in result:
                    meta["gpu"] = result["gpu"]
            results[key][n] = result
            print(f"{key:14s} N={n:6d}  {_cell(result)}", flush=True)
            previous, n_prev = result, n
    meta.update(
        cpu=cpu_model(),
        cores=os.cpu_count(),
        device=args.device,
        repeats=args.repeats,
        measure_seconds=args.measure_seconds,
        memory_limit=memory_limit,
        timeout=args.timeout,
        date=datetime.date.today().isoformat(),
        wall_s=time.time() - started,
        command=" ".join(
            ["python", "benchmarks/losses.py", *(argv if argv is not None else sys.argv[1:])]
        ),
    )
    section = _section(results, sizes, meta)
    print("\n" + section)
    if args.out:
        write_section(args.out, section, *_markers(args.device))
        print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
