"""Regenerate BENCHMARKS.md's quality evidence in one command (`make bench-quality`).

    python -m benchmarks.quality                  # the default run: fits ~60 min on 2 CPU cores
    python -m benchmarks.quality --full           # the complete grid (hours on a CPU)
    python -m benchmarks.quality --quick --out /tmp/B.md --figures /tmp/fig   # smoke test

Parts, in the order they run, each timed for the summary at the top of the file:
1. the loss-kernel table (benchmarks/losses.py, a subprocess; --repeats 3 by default);
2. Banking77 with all-MiniLM-L6-v2: frozen (kNN, logistic regression) and adapter refiners with
   the library's defaults, for every configuration of `quality_banking77.CONFIGS`, --workers
   runs at a time;
3. Fashion-MNIST (benchmarks/fashion_mnist.py, when present);
4. the self-supervised benchmark (benchmarks/self_supervised.py, --full only);
5. default profile: the full-train adapter runs outside the H-SCL claim
   (`quality_banking77.while_budget_lasts`), then the Banking77 finetune runs in priority
   order, each only if it is predicted to end within the time budget (--full: all);
6. the sections built from the records: Banking77 table and targets, the H-SCL claim, the
   paper's loss comparison, "what to use when", and the plots.
Every Banking77 run is appended to --jsonl as it ends; --reuse reads them back instead of
training again. Sections are rewritten between their markers; other sections stay as they are.
"""

from __future__ import annotations

import argparse
import datetime
import inspect
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from importlib import metadata
from pathlib import Path

from benchmarks.machine import cpu_model
from benchmarks.markdown import write_section

from benchmarks import quality_banking77 as b77
from benchmarks import quality_report as rep
from contrastkit.config.defaults import HARD_NEGATIVES_MIN_ROWS_PER_CLASS

ROOT = Path(__file__).resolve().parents[1]
MARKERS = {name: (f"<!-- {name}:begin -->", f"<!-- {name}:end -->")
           for name in ("quality-summary", "banking77", "hscl-claim", "what-to-use")}  # fmt: skip
BUDGET_MINUTES = 60.0
REPORT_RESERVE_S = 90.0  # kept free at the end of the budget for the report and plots
# Fashion-MNIST per profile: (minutes per run, seeds, claim seeds).
FASHION = {"quick": (0.05, [0], [0]), "default": (1.0, [0], [0]), "full": (10.0, [0, 1, 2],
                                                                          [0, 1, 2])}  # fmt: skip
VERSIONED = ("contrastkit", "torch", "sentence-transformers", "scikit-learn", "faiss-cpu",
             "numpy", "pytorch-metric-learning")  # fmt: skip


def _profile(args) -> str:
    return "quick" if args.quick else "full" if args.full else "default"


def _load() -> str:
    try:
        return " / ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:  # pragma: no cover
        return "unknown"


def machine() -> str:
    import torch

    cpu, mem = cpu_model(), ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kib / 2**20:.0f} GiB RAM"
    except (OSError, ValueError):
        pass
    return f"{cpu}, {os.cpu_count()} cores{mem}, torch threads {torch.get_num_threads()}"


def versions() -> str:
    found = [f"Python {platform.python_version()}"]
    for name in VERSIONED:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return ", ".join(found)


class Parts:
    """Runs the parts, each timed, none allowed to stop the others."""

    def __init__(self) -> None:
        self.rows: list[dict] = []

    def run(self, name: str, fn, *args, **kwargs):
        print(f"\n=== {name} ===", flush=True)
        started = time.perf_counter()
        try:
            result, status = fn(*args, **kwargs), "ok"
        except Exception as exc:  # a failed part is reported, the rest still runs
            traceback.print_exc()
            result, status = None, f"failed: {type(exc).__name__}: {' '.join(str(exc).split())}"
        seconds = time.perf_counter() - started
        self.rows.append({"part": name, "seconds": seconds, "status": status})
        print(f"=== {name}: {status} in {seconds / 60:.1f} min ===", flush=True)
        return result

    def skip(self, name: str, why: str) -> None:
        self.rows.append({"part": name, "seconds": 0.0, "status": f"not run: {why}"})

    @property
    def failed(self) -> bool:
        return any(r["status"].startswith("failed") for r in self.rows)


# ----------------------------------------------------------------------------- parts


def _arg(path: Path) -> str:
    """A path as a script run from the root is given it (relative there: it shows in the
    scripts' "Command:" lines)."""
    path = path.resolve()
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)


def run_script(args: list[str]) -> None:
    """A benchmark script as a subprocess from the repository root; a non-zero exit raises."""
    command = [sys.executable, *args]
    print("$ " + " ".join(command), flush=True)
    code = subprocess.run(command, cwd=ROOT, check=False).returncode
    if code:
        raise RuntimeError(f"{' '.join(args)} exited with status {code}")


def run_fashion(profile: str, out: Path, figures: Path, results_dir: Path, reuse: bool):
    """fashion_mnist.run then its section into `out`; None (and a message) if the module is
    missing. Its raw results go to results_dir/quality_fashion_mnist.json."""
    try:
        import benchmarks.fashion_mnist as fm
    except ImportError as exc:
        print(f"benchmarks.fashion_mnist is not available ({exc}); its section is left as it is")
        return None
    minutes, seeds, claim_seeds = FASHION[profile]
    saved = fashion_results_path(profile, results_dir)
    wanted = {"budget_minutes": minutes, "seeds": seeds, "quick": profile == "quick"}
    results = None
    if reuse and saved.is_file():
        old = json.loads(saved.read_text())
        if all(old.get(k) == v for k, v in wanted.items()):
            print(f"reused {saved}")
            results = old
    if results is None:
        accepted = inspect.signature(fm.run).parameters
        extra = {k: v for k, v in (("claim_minutes", minutes), ("claim_seeds", claim_seeds))
                 if k in accepted}  # fmt: skip
        results = fm.run(minutes, seeds, profile == "quick", **extra)
        saved.parent.mkdir(parents=True, exist_ok=True)
        saved.write_text(json.dumps(results, indent=1))
    # The module links the path it is given and resolves a relative one from the repository
    # root: relative when BENCHMARKS.md is at the root, absolute otherwise (smoke tests).
    figure = (figures / "fashion_mnist.png").resolve()
    if out.resolve().parent == ROOT and figure.is_relative_to(ROOT):
        figure = figure.relative_to(ROOT)
    text = fm.section(results, figure=figure)
    fm.write_section(out, text)  # into the section its results belong in
    return dict(results, saved_as=_arg(saved))


def fashion_results_path(profile: str, results_dir: Path) -> Path:
    return results_dir / f"quality_fashion_mnist{'_quick' if profile == 'quick' else ''}.json"


def saved_fashion(profile: str, results_dir: Path) -> dict | None:
    """The Fashion-MNIST results an earlier run of this profile saved, or None."""
    saved = fashion_results_path(profile, results_dir)
    if not saved.is_file():
        return None
    return dict(json.loads(saved.read_text()), saved_as=_arg(saved))


# ----------------------------------------------------------------------------- sections


def banking77_section(records, skipped, profile, figure_link, encode_s, args) -> str:
    adapter_rows = [r for r in records if r["mode"] == "adapter"]
    lines = ["## Banking77: frozen, adapter and finetune refinement (all-MiniLM-L6-v2, CPU)", ""]
    if profile == "quick":
        lines += ["**Quick run** (a few classes, two epochs): proves the code runs; the figures "
                  "mean nothing.", ""]  # fmt: skip
    test_rows = records[0]["test_rows"] if records else 0
    lines += [
        f"Test set: test.csv ({test_rows} rows). Every refiner uses the library's defaults "
        "(`Refiner(mode=..., method=..., seed=...)`, nothing tuned; loss options only where the "
        "configuration names them). Scores from `contrastkit.evaluate`: kNN-1 = cosine "
        "1-nearest-neighbour test accuracy against the training rows, linear probe = "
        "standardised logistic regression fit on the training embeddings, MAP@R = test set "
        "against itself. Mean ± sample std over seeds (no ± for one seed).",
        "",
        *rep.banking77_table(records),
        "",
        f"Published figures beside them (from {rep.ANCHORS_SOURCE}, as published; other models "
        "and protocols):",
        "",
        *rep.published_table(),
        "",
        *rep.targets_table(rep.targets(records, profile, skipped)),
        "",
    ]
    notes = []
    if encode_s:
        notes.append("frozen encoding (train + test, model load included, empty cache): "
                     + ", ".join(f"{b77.SPLIT_LABELS[s]} {t:.0f} s" for s, t in encode_s.items()))  # fmt: skip
    if adapter_rows:
        e2e = [r["end_to_end_s"] for r in adapter_rows if r["split"] == "train" and
               r.get("end_to_end_s") is not None]  # fmt: skip
        if e2e:
            notes.append(f"a full-train adapter run end to end (encoding + fit + embedding + "
                         f"evaluation): {min(e2e):.0f} to {max(e2e):.0f} s")  # fmt: skip
    concurrent = {(r.get("concurrent", 1), r.get("threads")) for r in adapter_rows}
    for runs, threads in sorted(c for c in concurrent if c[0] > 1):
        notes.append(f"adapter runs trained {runs} at a time, {threads} torch thread(s) each: "
                     "their fit and end-to-end times are per run under that load")  # fmt: skip
    for s in skipped:
        notes.append(f"not run: {s['mode']} {s['config']} on {b77.SPLIT_LABELS[s['split']]}, "
                     f"seed {s['seed']} ({s['reason']})")  # fmt: skip
    if profile == "default":
        notes.append("the full-train adapter rows outside the H-SCL claim (one seed) and the "
                     "finetune rows (supcon, ce and hscl (beta=1), one seed, 5- and 10-shot) run "
                     "last, only while the 60-minute budget lasts; full-data finetune and the "
                     "other methods run with `make bench-quality-full`")  # fmt: skip
    notes.append(f"supcon's hardness tilt is {b77.HARDNESS:g}: hscl's default beta, the same "
                 "relative tilt of the negatives at either loss's temperature")  # fmt: skip
    notes.append("adapter **supcon** is the library's default: its plan tilts towards hard "
                 f"negatives (hardness {b77.HARDNESS:g}) when the classes average at least "
                 f"{HARD_NEGATIVES_MIN_ROWS_PER_CLASS} training rows (the full split), and trains "
                 "plain SupCon below that (5- and 10-shot); supcon (hardness=0) is plain SupCon "
                 "on every split. Its full-split rows were recorded as 'supcon' before the tilt "
                 "became the default (each record says so)")  # fmt: skip
    lines += [f"- {n}." for n in notes] + [""]
    if figure_link:
        lines += [f"![Banking77 kNN-1 and MAP@R per configuration]({figure_link})", ""]
    lines.append(f"Raw results, one JSON line per run: `{args.jsonl_display}`.")
    return "\n".join(lines)


def claim_section(records, fashion, figure_link) -> str:
    rows = rep.claim_rows(records)
    lines = [
        "## The H-SCL claim: do hard negatives help supervised contrastive learning?",
        "",
        "Jiang et al. (H-SCL) claim that tilting the negatives towards hard ones beats plain "
        "supervised contrastive learning downstream. Tested here with the adapter on Banking77, "
        "same defaults and budget on both sides: hscl with beta > 0 against its SCL form "
        "(beta = 0), and supcon with a hardness tilt against plain supcon. Each cell: difference "
        "of the means (hard minus plain) and, in brackets, the seed spread it is compared with "
        "(the larger of the two sample stds): `>` means the difference exceeds it.",
        "",
        *rep.claim_table(rows),
        "",
        rep.claim_summary(rows),
        "",
    ]
    if figure_link and rows:
        lines += [f"![Hard negatives minus none, kNN-1]({figure_link})", ""]
    if fashion is not None:
        try:
            import benchmarks.fashion_mnist as fm

            saved = fashion.get("saved_as", "saved by the bench")
            lines += ["Fashion-MNIST (small CNN from scratch; this bench's own Fashion-MNIST "
                      f"runs, `{saved}`):", "", *fm.claim_lines(fashion), ""]  # fmt: skip
        except (ImportError, AttributeError, KeyError) as exc:
            lines += [f"Fashion-MNIST claim lines unavailable ({exc}).", ""]
    else:
        lines += ["Fashion-MNIST: no results (its module or data is missing, or it was skipped "
                  "with none saved).", ""]  # fmt: skip
    lines += [
        "### The paper's loss comparison on trained embeddings",
        "",
        "UCL, H-UCL, SCL and H-SCL (`contrastkit.losses.hard_negative_diagnostics`, defaults: "
        "temperature 0.5, tau_plus 0.1, beta 1) on the test embeddings of each seed-0 run, in "
        f"seeded batches of {b77.DIAGNOSTIC_BATCH} rows; the two views of a row are its "
        f"embedding under two {b77.DIAGNOSTIC_VIEW_DROPOUT:g} feature-dropout masks (the "
        "adapter's own augmentation), renormalised. Values are batch means.",
        "",
        *rep.diagnostics_table(records),
        "",
        rep.inequality_sentence(records),
        "",
        "Note: `hscl` (so SCL and H-SCL here) has one term per positive pair over all same-label "
        "rows, as the paper's training code; UCL and H-UCL have the other view as the only "
        "positive. The paper's loss-comparison script keeps only the other view as positive "
        "for SCL too, so with several rows per class in a batch these values are not the ones "
        "that script would give, and the inequality is checked on the library's definitions.",
    ]
    return "\n".join(lines)


def summary_section(parts: Parts, profile: str, args, started_at: str, load_start: str) -> str:
    total = sum(r["seconds"] for r in parts.rows)
    command = {"quick": "python -m benchmarks.quality --quick", "default": "make bench-quality",
               "full": "make bench-quality-full"}[profile]  # fmt: skip
    lines = [
        "## How these figures were made",
        "",
        f"`{command}` (`python -m benchmarks.quality{' ' + ' '.join(args.argv) if args.argv else ''}`) "
        f"regenerated the sections below on {started_at} in {total / 60:.1f} min "
        f"({'quick smoke test' if profile == 'quick' else profile + ' profile'}). Every figure "
        "is computed by the scripts; none is typed by hand.",
        "",
        f"- Machine: {machine()}; load average (1/5/15 min) {load_start} at the start, "
        f"{_load()} at the end.",
        f"- Versions: {versions()}.",
        "",
        "| part | wall time | status |",
        "|---|---|---|",
        *(f"| {r['part']} | {r['seconds'] / 60:.1f} min | {r['status']} |" for r in parts.rows),
        f"| **total** | **{total / 60:.1f} min** | |",
    ]
    if args.reuse or any(r["status"].startswith("not run") for r in parts.rows):
        lines += ["", "Partial run: with `--reuse` the runs already in the records were read "
                  "back, not trained again (each record keeps its start time, threads and "
                  "machine load), and the parts marked 'not run' kept their sections from the "
                  "earlier runs, each of which names its own command and machine."]  # fmt: skip
    if profile == "default" and total > 60 * args.budget_minutes:
        lines += ["", f"**Over budget:** the default profile is meant to fit "
                  f"{args.budget_minutes:.0f} min on 2 cores; the budget stops only the finetune "
                  "runs, and the parts before them took longer than that on this machine."]  # fmt: skip
    return "\n".join(lines)


def write(out: Path, name: str, body: str, top: bool = False) -> None:
    begin, end = MARKERS[name]
    write_section(out, body, begin, end, top=top)


# ----------------------------------------------------------------------------- main


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    profile = parser.add_mutually_exclusive_group()
    profile.add_argument("--quick", action="store_true", help="tiny subsets (~3 min smoke test)")
    profile.add_argument("--full", action="store_true", help="the complete grid (hours)")
    parser.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument("--figures", type=Path, default=ROOT / "benchmarks" / "figures")
    parser.add_argument("--results", type=Path, help="folder of the raw results (default "
                        "benchmarks/results; --quick: a temporary folder)")  # fmt: skip
    parser.add_argument("--jsonl", type=Path, help="run records (default "
                        "RESULTS/quality[_quick|_full].jsonl)")  # fmt: skip
    parser.add_argument("--reuse", action="store_true", help="read back runs already in --jsonl")
    parser.add_argument("--budget-minutes", type=float, default=BUDGET_MINUTES,
                        help="finetune runs stop being started when they would end after this "
                             "(default 60; --full: no limit)")  # fmt: skip
    parser.add_argument("--skip", default="", help="comma-separated parts to leave out: "
                        "losses, banking77, fashion, finetune, ssl")  # fmt: skip
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--workers", type=int, default=2, help="adapter runs trained at once, "
                        "each with its share of the cores (default 2)")  # fmt: skip
    args = parser.parse_args(argv)
    args.argv = list(argv if argv is not None else sys.argv[1:])
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    profile = _profile(args)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    suffix = {"quick": "_quick", "full": "_full", "default": ""}[profile]
    # a smoke test's records are no evidence: they stay out of the repository by default
    results_dir = args.results or (
        Path(tempfile.gettempdir()) / "contrastkit-quality-quick"
        if profile == "quick"
        else ROOT / "benchmarks" / "results"
    )
    args.jsonl = args.jsonl or results_dir / f"quality{suffix}.jsonl"
    args.jsonl_display = (
        args.jsonl.resolve().relative_to(ROOT).as_posix()
        if args.jsonl.resolve().is_relative_to(ROOT) else str(args.jsonl)
    )  # fmt: skip
    out, figures = args.out, args.figures
    if not args.reuse and args.jsonl.exists():
        args.jsonl.unlink()  # from scratch: the file then holds exactly this run's records
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    # An empty embedding cache, so that encoding is measured, not read back (kept with --reuse).
    cache = tempfile.TemporaryDirectory(prefix="contrastkit-bench-cache-")
    if not args.reuse:
        os.environ["CONTRASTKIT_CACHE"] = cache.name
    warnings.filterwarnings("ignore", category=UserWarning)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    started_at = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load_start, t0 = _load(), time.perf_counter()
    deadline = None if profile != "default" else t0 + 60 * args.budget_minutes - REPORT_RESERVE_S
    parts = Parts()

    if "losses" in skip:
        parts.skip("loss kernels (benchmarks/losses.py)", "--skip losses")
    else:
        extra = (
            ["--quick"] if profile == "quick" else [] if profile == "full" else ["--repeats", "3"]
        )
        parts.run("loss kernels (benchmarks/losses.py)", run_script,
                  ["benchmarks/losses.py", *extra, "--out", _arg(out)])  # fmt: skip

    records, skipped, encode_s, data = [], [], {}, None
    main_specs, finetune_specs = b77.plan(profile)
    extra_specs = [s for s in main_specs if b77.while_budget_lasts(s, profile)]
    main_specs = [s for s in main_specs if not b77.while_budget_lasts(s, profile)]
    if "banking77" in skip:
        parts.skip("Banking77 frozen + adapter", "--skip banking77")
    else:
        data = parts.run("Banking77 data", b77.load_banking77, profile == "quick")
        if data is not None:
            got = parts.run("Banking77 frozen + adapter", b77.run_all, main_specs, data,
                            quick=profile == "quick", jsonl=args.jsonl, reuse=args.reuse,
                            encode_s=encode_s, workers=args.workers)  # fmt: skip
            if got:
                records += got[0]

    fashion = None
    if "fashion" in skip:
        parts.skip("Fashion-MNIST (benchmarks/fashion_mnist.py)", "--skip fashion")
        fashion = saved_fashion(profile, results_dir)  # its section stays; the claims use it
    else:
        fashion = parts.run("Fashion-MNIST (benchmarks/fashion_mnist.py)", run_fashion, profile,
                            out, figures, results_dir, args.reuse)  # fmt: skip

    if profile == "full" and "ssl" not in skip:
        parts.run("self-supervised (benchmarks/self_supervised.py)", run_script,
                  ["benchmarks/self_supervised.py", "--out", _arg(out)])  # fmt: skip

    if data is not None and extra_specs:
        full = [r for r in records if r["mode"] == "adapter" and r["split"] == "train"]
        prior = b77.solo_step_seconds(full, torch.get_num_threads())
        got = parts.run("Banking77 adapter, the rest of the full train split", b77.run_all,
                        extra_specs, data, quick=False, jsonl=args.jsonl, reuse=args.reuse,
                        encode_s=encode_s, deadline=deadline, step_s_prior=prior)  # fmt: skip
        if got:
            records += got[0]
            skipped += got[1]

    if data is not None and "finetune" not in skip:
        got = parts.run("Banking77 finetune", b77.run_all, finetune_specs, data,
                        quick=profile == "quick", jsonl=args.jsonl, reuse=args.reuse,
                        encode_s=encode_s, deadline=deadline)  # fmt: skip
        if got:
            records += got[0]
            skipped += got[1]
    elif "finetune" in skip:
        parts.skip("Banking77 finetune", "--skip finetune")

    def report() -> None:
        if not records:
            print("no Banking77 records: its sections are left as they are")
            return
        fig_b77 = figures / "banking77_quality.png"
        fig_claim = figures / "hscl_claim.png"
        rep.plot_banking77(records, fig_b77)
        claim_rows = rep.claim_rows(records)
        if claim_rows:
            rep.plot_claim(claim_rows, fig_claim)
        write(out, "banking77", banking77_section(
            records, skipped, profile, rep.link(fig_b77, out), encode_s, args))  # fmt: skip
        write(out, "hscl-claim", claim_section(records, fashion, rep.link(fig_claim, out)))
        advice = rep.what_to_use(records, claim_rows, fashion)
        write(out, "what-to-use", "\n".join([
            "## What to use when (from the figures above)", "",
            "Rules fixed in advance, conclusions picked by this run's numbers; they hold for "
            "these data sets and budgets, not beyond.", "", *advice]))  # fmt: skip

    parts.run("report: tables, claims, plots", report)
    write(out, "quality-summary", summary_section(parts, profile, args, started_at, load_start),
          top=True)  # fmt: skip
    cache.cleanup()
    print(f"\nwritten to {out} in {(time.perf_counter() - t0) / 60:.1f} min")
    return 1 if parts.failed else 0


if __name__ == "__main__":
    sys.exit(main())
