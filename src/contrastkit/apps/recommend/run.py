"""`contrastkit recommend fit`: interactions (and items) in; the model, metrics.json (the model
and every baseline on the same split) and report.html out, in one run folder.

Everything that can be checked is checked before the run folder is touched: the folder, the
options, the files. The folder is locked while the run writes, and an --overwrite builds the
new run beside the old one, which it replaces only when complete (`io.run_folder`).
"""

from __future__ import annotations

import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from contrastkit.apps.recommend.evaluate import Evaluation, Protocol, evaluate_all, validation_ndcg
from contrastkit.apps.recommend.inputs import ReadOptions, load_data
from contrastkit.apps.recommend.recommender import Recommender
from contrastkit.apps.recommend.split import leave_last_out
from contrastkit.errors import DataError
from contrastkit.io.atomic import json_safe, write_json_atomic
from contrastkit.io.run_folder import check_run_dir, open_run_dir


@dataclass
class FitResult:
    run_dir: Path
    metrics: dict
    timing: dict
    notes: list[str] = field(default_factory=list)


def fit_run(
    interactions: str,
    out: str | Path,
    *,
    items: str | None = None,
    read: ReadOptions = ReadOptions(),
    options: dict | None = None,
    overwrite: bool = False,
    report: bool = True,
    baselines: bool = True,
    quiet: bool = False,
) -> FitResult:
    """Train, evaluate against the baselines, and write the run folder."""
    started = time.perf_counter()
    timing: dict[str, float] = {}
    run = check_run_dir(out, resume=False, overwrite=overwrite)
    rec = Recommender(**(options or {}))
    o = rec.options
    tick = time.perf_counter()
    data, catalogue = load_data(
        interactions, items, read, use_text=o.item_text, text_model=o.text_model, quiet=quiet
    )
    timing["read_and_embed_s"] = time.perf_counter() - tick
    split = leave_last_out(data, o.seed)
    if split.evaluated_users == 0:
        raise DataError(
            f"no user of {data.source} has 3 or more interactions, so none can be evaluated "
            "(one to train, one to validate, one to test); give more interactions per user"
        )
    protocol = Protocol.of(data, split, o.seed)
    config = _config(rec, data, split, catalogue, interactions, items, read)
    folder = open_run_dir(run, overwrite=overwrite)
    try:
        folder.write_config(json_safe(config))
        tick = time.perf_counter()
        rec.fit_rows(data, catalogue, split.train, validation_ndcg(protocol), quiet=quiet)
        timing["fit_s"] = time.perf_counter() - tick
        tick = time.perf_counter()
        evaluation = evaluate_all(rec, protocol, catalogue.features, baselines)
        timing["evaluate_s"] = time.perf_counter() - tick
        rec.observe(data)  # the saved model knows every interaction, held-out ones included
        metrics = _write_outputs(folder.work, rec, protocol, evaluation, config, timing, report)
        timing["total_s"] = time.perf_counter() - started
        write_json_atomic(folder.work / "metrics.json", json_safe(metrics))
        folder.finish()
    except BaseException:
        _abandon(folder)
        raise
    finally:
        folder.release()
    return FitResult(folder.path, metrics, timing, [*data.notes, *evaluation.notes])


def _write_outputs(work: Path, rec, protocol, evaluation, config, timing, report) -> dict:
    """The model and report.html; the metrics (written last, once everything else is there)."""
    rec.save(work / "model")
    metrics = _metrics(evaluation, rec, config, timing)
    if report:
        from contrastkit.apps.recommend.report import write_report

        tick = time.perf_counter()
        write_report(work / "report.html", rec, protocol, evaluation, config, timing)
        timing["report_s"] = time.perf_counter() - tick
    return metrics


def _abandon(folder) -> None:
    """A run that failed or was interrupted leaves the folder as it found it: the staging
    folder of an --overwrite goes, and so do the outputs of a run in a new folder."""
    if not folder.staged:
        shutil.rmtree(folder.work / "model", ignore_errors=True)
        for name in ("report.html", "metrics.json"):
            (folder.work / name).unlink(missing_ok=True)
    folder.abandon()


def _config(rec, data, split, catalogue, interactions, items, read: ReadOptions) -> dict:
    return {
        "interactions": str(interactions),
        "items": None if items is None else str(items),
        "read": asdict(read),
        "options": rec.options.to_dict(),
        "features": catalogue.feature_kind or "none (id embeddings only)",
        "data": {
            "users": data.n_users,
            "items": data.n_items,
            "interactions": len(data),
            "training_interactions": len(split.train),
            "evaluated_users": split.evaluated_users,
        },
        "protocol": split.protocol,
    }


def _metrics(evaluation: Evaluation, rec: Recommender, config: dict, timing: dict) -> dict:
    evaluation.metrics["two-tower"]["fit_s"] = timing.get("fit_s")
    return {
        "models": evaluation.metrics,
        "training": {"epochs": rec.log_, "best_epoch": rec.best_epoch_},
        "config": config,
        "timing": timing,
    }
