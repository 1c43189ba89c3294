"""What a finished run writes: before/after metrics, the model, the embeddings, the report and
metrics.json, each written atomically."""

from __future__ import annotations

import numpy as np

from contrastkit.data.labels import EncodedLabels, encode_labels
from contrastkit.evaluation import evaluate
from contrastkit.evaluation.verdict import versus_frozen_linear
from contrastkit.io.atomic import atomic_file, atomic_folder, json_safe, write_json_atomic
from contrastkit.io.embeddings import write_embeddings


def embed_both(refiner, X) -> tuple[np.ndarray, np.ndarray]:
    """(base, refined) embeddings of X; text pairs give their a texts' rows, then their b's."""
    if isinstance(X, list) and X and isinstance(X[0], tuple):
        X = [a for a, _ in X] + [b for _, b in X]
    return refiner.base_transform(X), refiner.transform(X)


def rows_per_label(labels, Z):
    """Labels per embedding row: pairs have two rows (a, then b) per label."""
    if labels is None or Z is None or len(labels) == len(Z):
        return labels
    return np.concatenate([labels, labels])


def evaluate_before_after(
    Z: dict[str, np.ndarray], labels: EncodedLabels, seed: int
) -> tuple[dict, dict]:
    """`evaluate` of the base and the refined embeddings (keys train_before, train_after,
    eval_before, eval_after) against the encoded train and evaluation labels."""
    before = evaluate(Z["train_before"], labels.train, Z["eval_before"], labels.test, seed=seed)
    after = evaluate(Z["train_after"], labels.train, Z["eval_after"], labels.test, seed=seed)
    return before, after


def unseen_class_rows(labels: EncodedLabels) -> np.ndarray:
    """Which evaluation rows have a class that no training row has."""
    return labels.test >= labels.n_train_classes


def seen_class_accuracies(
    Z: dict[str, np.ndarray], labels: EncodedLabels, seed: int
) -> tuple[dict, dict]:
    """kNN and linear-probe accuracy on the evaluation rows whose class training has seen,
    before and after, as `<metric>_seen_classes`."""
    from contrastkit.evaluation.metrics import accuracies

    seen = ~unseen_class_rows(labels)
    out = []
    for side in ("before", "after"):
        unit = {
            k: Z[f"{k}_{side}"] / np.linalg.norm(Z[f"{k}_{side}"], axis=1, keepdims=True)
            for k in ("train", "eval")
        }
        scores = accuracies(
            unit["train"], labels.train, unit["eval"][seen], labels.test[seen], seed=seed
        )
        out.append({f"{k}_seen_classes": v for k, v in scores.items()})
    return out[0], out[1]


def evaluate_pairs(Z: dict[str, np.ndarray], y_train, y_eval) -> tuple[dict, dict, str]:
    """(before, after, how) on the evaluation pairs (embedding rows: the a texts, then the b
    texts). Pairs labelled 1/0: average precision, best F1, and precision, recall, F1 and
    accuracy at the threshold calibrated on the training pairs (when they are labelled 1/0
    too). Graded scores: the Spearman correlation of the cosines with the scores."""
    from contrastkit.evaluation.pairs import (
        calibrate_threshold,
        pair_classification,
        pair_cosines,
        pair_scores,
    )

    scores = np.asarray(y_eval)
    if scores.dtype.kind not in "biuf":
        return {}, {}, "no metrics: the test pairs' labels are not numbers"
    binary = set(np.unique(scores).tolist()) <= {0, 1}
    out = []
    for side in ("before", "after"):
        Z_eval, n = Z[f"eval_{side}"], len(scores)
        if not binary:
            out.append(pair_scores(Z_eval[:n], Z_eval[n:], scores))
            continue
        threshold = None
        if y_train is not None and set(np.unique(y_train).tolist()) <= {0, 1}:
            Z_train, m = Z[f"train_{side}"], len(y_train)
            cos_train = pair_cosines(Z_train[:m], Z_train[m:])
            threshold = calibrate_threshold(cos_train, np.asarray(y_train)).threshold
        out.append(pair_classification(pair_cosines(Z_eval[:n], Z_eval[n:]), scores, threshold))
    if not binary:
        return (
            out[0],
            out[1],
            "Spearman correlation of each pair's cosine similarity with its score",
        )
    how = "pairs labelled 1/0, ranked by cosine"
    if "threshold" in out[1]:
        how += "; precision, recall, F1 and accuracy at the threshold best on the training pairs"
    return out[0], out[1], how


def evaluate_on_test_only(Z_before: np.ndarray, Z_after: np.ndarray, y_eval, seed: int):
    """(before, after, how) when only the evaluation rows have labels: `evaluate_test_only`
    (the labelled test set split in two)."""
    from contrastkit.evaluation.without_train_labels import TEST_ONLY_NOTE, evaluate_test_only

    codes = encode_labels(y_eval).train
    before = evaluate_test_only(Z_before, codes, seed=seed)
    return before, evaluate_test_only(Z_after, codes, seed=seed), TEST_ONLY_NOTE


def save_model(refiner, target) -> None:
    with atomic_folder(target) as tmp:
        refiner.save(tmp)


def save_embeddings(path, Z_train, y_train, Z_eval, y_eval, eval_split: str) -> None:
    """Every row's refined embedding: the training rows, then the evaluation rows
    (`eval_split`: "test" or "validation")."""
    splits = [("train", len(Z_train))]
    Z, labels = [Z_train], list(y_train) if y_train is not None else [None] * len(Z_train)
    if Z_eval is not None:
        splits.append((eval_split, len(Z_eval)))
        Z.append(Z_eval)
        labels += list(y_eval) if y_eval is not None else [None] * len(Z_eval)
    write_embeddings(path, np.concatenate(Z), labels, splits)


def save_report(
    path,
    refiner,
    before,
    after,
    Z: dict,
    labels: EncodedLabels,
    eval_texts,
    config,
    timing,
    check=None,
) -> None:
    """report.html; without training labels the per-class figures are leave-one-out on the
    evaluation rows (`labels` then holds the evaluation labels as its `train`)."""
    from contrastkit.evaluation import write_report

    with_train = labels.test is not None
    with atomic_file(path) as tmp:
        write_report(
            tmp,
            before=before,
            after=after,
            test_before=Z["eval_before"],
            test_after=Z["eval_after"],
            test_labels=labels.test if with_train else labels.train,
            class_names=[str(c) for c in labels.classes],
            history=refiner.history_,
            train_before=Z["train_before"] if with_train else None,
            train_after=Z["train_after"] if with_train else None,
            train_labels=labels.train if with_train else None,
            examples=list(eval_texts) if refiner.kind_ == "text" else None,
            config=config,
            timing=timing,
            seed=refiner.config.seed,
            check=check,
        )


def save_metrics(
    path, before: dict, after: dict, config: dict, timing: dict, history, check=None
) -> None:
    """metrics.json; metrics undefined for the evaluation rows are left out of before/after
    and listed under "undefined" with the reason. `versus_frozen_linear`: each refined
    accuracy minus the frozen embeddings' linear probe (and that probe); `check`: the safety
    net's verdict on held-out training rows (`contrastkit.run.check`)."""
    undefined = {**getattr(before, "undefined", {}), **getattr(after, "undefined", {})}
    document = {"before": before, "after": after, "config": config, "timing": timing}
    document["versus_frozen_linear"] = versus_frozen_linear(before, after)
    document["check"] = check
    write_json_atomic(path, json_safe({**document, "undefined": undefined, "history": history}))
