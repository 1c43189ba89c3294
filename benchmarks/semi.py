"""Semi-supervised refinement on Banking77 (issue 24): a few labelled rows a class (train_5.csv
or train_10.csv) and the rest of train.csv, labels dropped, as unlabelled rows.

    python benchmarks/semi.py run --split train_10 --mode finetune --config pl --seed 0
    python benchmarks/semi.py render   # benchmarks/results/semi.jsonl -> the tables in semi.md

The unlabelled rows are train.csv minus the labelled rows, minus every test.csv text and (the
"tuning" pool, the default) every valid.csv text, compared after lower-casing and dropping
punctuation; the script asserts that no unlabelled text equals a test (or valid) text. valid.csv
is a part of train.csv, so with the tuning pool one run is scored on valid.csv (where settings
are chosen) and test.csv (reported) without either having been trained on.

Every run goes through the library's own path, `Refiner.fit(X, y, X_unlabelled=...)`, and is
scored (kNN-1 and linear probe of valid/test rows against the labelled rows' embeddings) after
each of its stages: the scores after the supervised stage are those of the labelled-only fit
of the same seed (the stages before it do not touch the random state), so a run gives its
baseline as well. Each run is appended to the JSONL file with wall time, CPU seconds and load.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".." / "shared" / "data" / "banking77"
JSONL = ROOT / "benchmarks" / "results" / "semi.jsonl"
# name -> the Refiner options of the run (the unlabelled options; None: labelled rows only).
CONFIGS: dict[str, dict | None] = {
    "frozen": None,
    "labelled-only": None,
    # the default stages: supervised, then pseudo-labelled (finetune mode: supervised, then an
    # adapter over the fine-tuned model, then two rounds of pseudo-labels for adapters over it)
    "pl": {"pseudo_labels": True},
    "pl1": {"pseudo_labels": True, "pseudo_label_rounds": 1},  # one round (the adapter's default)
    "pl2": {"pseudo_labels": True, "pseudo_label_rounds": 2},  # a second round (finetune default)
    "pl-0": {"pseudo_labels": True, "pseudo_label_margin": 0.0},
    "pl-0.1": {"pseudo_labels": True, "pseudo_label_margin": 0.1},
    "simcse+pl": {"unlabelled_method": "simcse", "pseudo_labels": True},
    "simcse": {"unlabelled_method": "simcse", "pseudo_labels": False},
    "simclr+pl": {"unlabelled_method": "simclr", "pseudo_labels": True},
    "simclr": {"unlabelled_method": "simclr", "pseudo_labels": False},
    # finetune mode: the adapter's pseudo-labels (a default adapter fit with the unlabelled
    # rows, the teacher) instead of the fine-tuned model's; one supervised fine-tuning on the
    # labelled and pseudo-labelled rows, TEACHER_EPOCHS epochs (~880 steps, about stages 2 + 3
    # of "pl")
    "adapter-teacher": {},
}
TEACHER_EPOCHS = 7


def norm(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9 ]", " ", str(text).lower()).split())


def load(name: str) -> tuple[list[str], np.ndarray]:
    import pandas as pd

    frame = pd.read_csv(DATA / f"{name}.csv")
    return frame["text"].astype(str).tolist(), frame["category"].to_numpy()


def unlabelled_pool(split: str, pool: str) -> list[str]:
    """train.csv minus the labelled, test (and for "tuning", valid) texts; asserted."""
    train, _ = load("train")
    labelled, _ = load(split)
    test, _ = load("test")
    valid, _ = load("valid")
    held = {norm(t) for t in test} | ({norm(t) for t in valid} if pool == "tuning" else set())
    drop = held | {norm(t) for t in labelled}
    rows = [t for t in train if norm(t) not in drop]
    assert not {norm(t) for t in rows} & {norm(t) for t in test}, "a test text is unlabelled"
    assert not set(rows) & set(test), "a test text is unlabelled"
    if pool == "tuning":
        assert not {norm(t) for t in rows} & {norm(t) for t in valid}, "a valid text leaked"
    return rows


def scores(embed, labelled, evals: dict) -> dict:
    """{eval split: [kNN-1, linear probe]} with `embed` (texts -> unit rows)."""
    from contrastkit.data import encode_labels
    from contrastkit.evaluation import knn_predict
    from contrastkit.evaluation.metrics import linear_probe_accuracy

    Z = embed(labelled[0])
    out = {}
    for name, (texts, y) in evals.items():
        codes = encode_labels(labelled[1], y)
        E = embed(texts)
        knn = float((knn_predict(Z, codes.train, E, k=1) == codes.test).mean())
        out[name] = [knn, float(linear_probe_accuracy(Z, codes.train, E, codes.test))]
    return out


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run(args) -> dict:
    import torch

    from contrastkit import Refiner
    from contrastkit.refiner import unlabelled as stages

    labelled = load(args.split)
    evals = {"valid": load("valid"), "test": load("test")}
    options = CONFIGS[args.config]
    U = unlabelled_pool(args.split, args.pool) if options is not None else None
    record = {"split": args.split, "mode": args.mode, "config": args.config, "seed": args.seed,
              "pool": args.pool, "n_labelled": len(labelled[0]), "n_unlabelled": len(U or []),
              "threads": torch.get_num_threads(), "stages": {}}  # fmt: skip
    started, cpu0 = time.perf_counter(), cpu_seconds()

    def stage_scores(name, backbone):
        tick = time.perf_counter()
        record["stages"][name] = scores(backbone.embed, labelled, evals)
        record["stages"][name + "_at_s"] = round(tick - started, 1)
        print(name, json.dumps(record["stages"][name]), file=sys.stderr, flush=True)

    ssl, pl = stages._Stages.self_supervised, stages._Stages.pseudo_labelled
    adapter = stages._Stages.adapter_over_tuned

    def ssl_scored(self):
        state = ssl(self)
        stage_scores("self_supervised", self.backbone)
        return state

    def adapter_scored(self, spec):  # finetune mode: the fine-tuned model, then the adapter
        stage_scores("supervised", self.backbone)
        return adapter(self, spec)

    def pl_scored(self, spec, trainer, state, round_=1):
        names = ["supervised"] + (["adapter"] if args.mode == "finetune" else [])
        names += [f"pseudo_labelled_{k}" for k in range(1, 11)]  # the rounds before the last
        stage_scores(next(n for n in names if n not in record["stages"]), self.backbone)
        return pl(self, spec, trainer, state, round_)

    stages._Stages.self_supervised, stages._Stages.pseudo_labelled = ssl_scored, pl_scored
    stages._Stages.adapter_over_tuned = adapter_scored
    if args.config == "adapter-teacher":
        refiner = adapter_taught(args, labelled, U, record, stage_scores)
    elif args.config == "frozen":
        from contrastkit.models.backbones import FrozenTextBase

        base = FrozenTextBase(None, torch.device("cpu"))
        record["stages"]["final"] = scores(base.encode, labelled, evals)
    else:
        refiner = Refiner(mode=args.mode, seed=args.seed, quiet=not args.verbose, **(options or {}))
        refiner.fit(labelled[0], labelled[1], X_unlabelled=U)
    if args.config != "frozen":
        fit_s = time.perf_counter() - started
        record["stages"]["final"] = scores(refiner.transform, labelled, evals)
        record.update(fit_s=round(fit_s, 1), rows=refiner.rows_, unlabelled=refiner.unlabelled_,
                      plan=refiner.plan_.as_dict())  # fmt: skip
    if "teacher" in record:
        record["rows"] = {**record["rows"], "pseudo_labelled": record["teacher"]["pseudo_labelled"]}
    record.update(wall_s=round(time.perf_counter() - started, 1),
                  cpu_s=round(cpu_seconds() - cpu0, 1), load=os.getloadavg(),
                  command=" ".join(sys.argv), date=time.strftime("%Y-%m-%d %H:%M"))  # fmt: skip
    return record


def adapter_taught(args, labelled, U: list[str], record: dict, stage_scores):
    """The "adapter-teacher" run: a default adapter fit with the unlabelled rows labels them
    (margin 0.05, as its own stage 3); the model is fine-tuned on the labelled rows and those.
    The pseudo-labels' precision is measured against train.csv's labels (not used to train)."""
    from contrastkit import Refiner
    from contrastkit.data import encode_labels
    from contrastkit.refiner.pseudo_labels import confident_rows

    assert args.mode == "finetune", "the adapter teaches a fine-tuned model"
    teacher = Refiner(mode="adapter", seed=args.seed, quiet=True)
    teacher.fit(labelled[0], labelled[1], X_unlabelled=U)
    record["stages"].pop("supervised", None)  # the teacher's stage 2, not this mode's
    record["stages"].pop("supervised_at_s", None)
    stage_scores("teacher", SimpleNamespace(embed=teacher.transform))
    codes = encode_labels(labelled[1])
    rows, classes = confident_rows(
        teacher.transform(labelled[0]), codes.train, teacher.transform(U), 0.05
    )
    names = np.asarray(codes.classes, dtype=object)[classes]
    truth = dict(zip(*load("train"), strict=True))
    precision = float(np.mean([truth[U[r]] == name for r, name in zip(rows, names, strict=True)]))
    record["teacher"] = {"pseudo_labelled": len(rows), "precision": round(precision, 4)}
    X = list(labelled[0]) + [U[r] for r in rows]
    y = list(labelled[1]) + list(names)
    student = Refiner(mode="finetune", seed=args.seed, quiet=not args.verbose,
                      epochs=TEACHER_EPOCHS)  # fmt: skip
    student.fit(X, y)
    return student


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run")
    r.add_argument("--split", choices=("train_5", "train_10"), default="train_10")
    r.add_argument("--mode", choices=("adapter", "finetune"), default="adapter")
    r.add_argument("--config", choices=tuple(CONFIGS), default="pl")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--pool", choices=("tuning", "full"), default="tuning")
    r.add_argument("--jsonl", type=Path, default=JSONL)
    r.add_argument("--verbose", action="store_true")
    m = sub.add_parser("render")
    m.add_argument("--jsonl", type=Path, default=JSONL)
    m.add_argument("--out", type=Path, default=JSONL.with_suffix(".md"))
    args = parser.parse_args(argv)
    if args.command == "run":
        record = run(args)
        args.jsonl.parent.mkdir(parents=True, exist_ok=True)
        with args.jsonl.open("a") as f:
            f.write(json.dumps(record) + "\n")
        print(json.dumps(record))
    else:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from semi_report import render

        render(args.jsonl, args.out)


if __name__ == "__main__":
    main()
