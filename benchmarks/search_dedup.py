"""Duplicate detection at scale, on synthetic clustered vectors with planted near copies:

- `dedup`: `contrastkit dedup` itself (the command, in a child process) on n rows: wall time,
  peak resident memory of the process (data included), and pair recall and precision against
  exact all-pairs on a subset of complete duplicate groups;
- `mining`: sentence-transformers' paraphrase_mining_embeddings and community_detection (in a
  child process with a time limit) at growing sizes, and contrastkit's dedup at the same sizes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from benchmarks.search_data import with_near_duplicates

from contrastkit.apps.dedup import duplicates_of_embeddings

ROOT = Path(__file__).resolve().parents[1]
THRESHOLD = 0.9
LIMIT_S = 600


def _child_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT), env.get("PYTHONPATH", "")])
    return env


# Prepended to every child: at exit it writes its peak resident memory (VmHWM, which starts
# afresh at exec, unlike getrusage's ru_maxrss, which keeps the parent's peak before the fork).
# It also writes its CPU seconds: on a machine shared with other jobs the wall time is theirs too.
PEAK = """
import atexit, resource, sys
def _peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            print("PEAK_RSS", int(line.split()[1]) * 1024, file=sys.stderr)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print("CPU_SECONDS", usage.ru_utime + usage.ru_stime, file=sys.stderr)
atexit.register(_peak)
"""
CLI_CODE = """
import runpy
sys.argv = ["contrastkit", *sys.argv[1:]]
runpy.run_module("contrastkit.cli", run_name="__main__")
"""
ST_CODE = """
import json, time, torch
from benchmarks.search_data import with_near_duplicates
from sentence_transformers import util
n, what, threshold = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
X = torch.from_numpy(with_near_duplicates(n)[0])
start = time.perf_counter()
if what == "paraphrase_mining":
    found = util.paraphrase_mining_embeddings(X)
else:
    found = util.community_detection(X, threshold=threshold, min_community_size=2)
print("RESULT", json.dumps({"seconds": time.perf_counter() - start, "found": len(found)}), file=sys.stderr)
"""


def run_measured(
    code: str, args: list[str], timeout: float
) -> tuple[float, int | None, int | None, str]:
    """Run `python -c PEAK+code args`: (wall seconds, peak RSS bytes, exit code or None when
    killed at `timeout`, the end of stderr)."""
    start = time.perf_counter()
    command = [sys.executable, "-c", PEAK + code, *args]
    with tempfile.TemporaryFile() as errors:
        child = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=errors, env=_child_env()
        )
        try:
            code = child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
            code = None
        seconds = time.perf_counter() - start
        errors.seek(0)
        text = errors.read().decode(errors="replace")
    peaks = [int(line.split()[1]) for line in text.splitlines() if line.startswith("PEAK_RSS")]
    cpu = [float(line.split()[1]) for line in text.splitlines() if line.startswith("CPU_SECONDS")]
    if cpu:
        text += f"\nCPU_SECONDS {cpu[-1]}"
    return seconds, (peaks[-1] if peaks else None), code, text[-3000:]


def cpu_seconds(text: str) -> float | None:
    """The CPU seconds a child reported at exit (see PEAK)."""
    found = [float(line.split()[1]) for line in text.splitlines() if line.startswith("CPU_SECONDS")]
    return found[-1] if found else None


def subset_of_groups(source: np.ndarray, rows: int) -> np.ndarray:
    """About `rows` row numbers: the originals below a cut and every copy of them, so that
    the subset holds whole groups of planted duplicates."""
    cut = int(rows / len(source) * (source.max() + 1))
    return np.flatnonzero(source < cut)


def dedup(n: int, subset_rows: int = 100_000) -> dict:
    X, source = with_near_duplicates(n)
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        np.save(folder / "x.npy", X)
        args = ["dedup", "--input", str(folder / "x.npy"), "--out", str(folder / "groups.parquet"),
                "--pairs", str(folder / "pairs.parquet"), "--threshold", str(THRESHOLD), "--quiet"]  # fmt: skip
        seconds, peak, code, errors = run_measured(CLI_CODE, args, timeout=6 * LIMIT_S)
        if code != 0:
            return {
                "bench": "dedup",
                "rows": n,
                "failed": errors[-500:] or f"killed after {seconds:.0f} s",
            }
        pairs = pq.read_table(folder / "pairs.parquet", columns=["a", "b"]).to_pandas()
    subset = subset_of_groups(source, subset_rows)
    exact = duplicates_of_embeddings(X[subset], THRESHOLD, kind="flat").pairs
    want = set(zip(subset[exact["a"]].tolist(), subset[exact["b"]].tolist(), strict=True))
    inside = np.isin(pairs["a"], subset) & np.isin(pairs["b"], subset)
    got = set(zip(pairs["a"][inside].tolist(), pairs["b"][inside].tolist(), strict=True))
    return {
        "bench": "dedup", "rows": n, "threshold": THRESHOLD, "seconds": seconds,
        "cpu_seconds": cpu_seconds(errors), "load_average": os.getloadavg(),
        "peak_rss_bytes": peak, "pairs": len(pairs), "subset_rows": len(subset),
        "subset_exact_pairs": len(want), "pair_recall": len(got & want) / max(len(want), 1),
        "pair_precision": len(got & want) / max(len(got), 1),
    }  # fmt: skip


def st_method(n: int, what: str) -> dict:
    """One sentence-transformers method at n rows, in a child process limited to LIMIT_S."""
    args = [str(n), what, str(THRESHOLD)]
    seconds, peak, code, errors = run_measured(ST_CODE, args, LIMIT_S + 60)
    record = {"bench": "mining", "rows": n, "method": what, "peak_rss_bytes": peak}
    if code != 0:
        failed = "time limit" if code is None else errors[-300:]
        return {**record, "failed": failed, "seconds": seconds}
    line = next(x for x in errors.splitlines() if x.startswith("RESULT "))
    result = json.loads(line.removeprefix("RESULT "))
    return {**record, "seconds": result["seconds"], "found": result["found"],
            "cpu_seconds": cpu_seconds(errors), "load_average": os.getloadavg()}  # fmt: skip


def ours(n: int) -> dict:
    X, _ = with_near_duplicates(n)
    start = time.perf_counter()
    found = duplicates_of_embeddings(X, THRESHOLD)
    seconds = time.perf_counter() - start
    return {"bench": "mining", "rows": n, "method": "contrastkit find_duplicates", "seconds": seconds,
            "found": len(found.pairs)}  # fmt: skip


def mining(sizes: list[int]) -> list[dict]:
    """Each method at growing sizes while the last time, grown with the square of the rows,
    predicts a finish within LIMIT_S."""
    records = []
    for method in ("paraphrase_mining", "community_detection"):
        last = None
        for n in sizes:
            predicted = None if last is None else last["seconds"] * (n / last["rows"]) ** 2
            if predicted is not None and predicted > LIMIT_S:
                records.append({"bench": "mining", "rows": n, "method": method, "skipped": True,
                                "predicted_seconds": predicted})  # fmt: skip
                break
            record = st_method(n, method)
            records.append(record)
            if "failed" in record:
                break
            last = record
    tried = {r["rows"] for r in records if not r.get("skipped")}
    records += [ours(n) for n in sizes if n <= max(tried)]  # 1e6 rows: see the dedup part
    return records
