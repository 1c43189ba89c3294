"""The safety net of `contrastkit refine`: after training, the refined embeddings are compared
with the base ones on held-out training rows (never the test set), and a refinement that made
things worse is said to be so, with what to try.

With --test, `CHECK_FRACTION` of the rows of every class of three or more rows (at least one
row; a class keeps two, so it still has a positive pair) is held out of training for the
check; the check rows still serve as reference rows when the test set is scored. In adapter
mode the run then fits again on every row and keeps that model (`contrastkit.run.job`). Without
--test the evaluation rows already are held-out training rows, and the check is made on them.
"""

from __future__ import annotations

import numpy as np

from contrastkit.data.splits import stratified_split
from contrastkit.evaluation import evaluate
from contrastkit.evaluation.verdict import describe, never_worse

CHECK_FRACTION = 0.1
MIN_CLASS_ROWS = 3  # a class gives a check row only when two rows are left to train
_STREAM = 19  # the check split's own random stream (see `stratified_split`)


def check_split(codes: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows that train, check rows): `CHECK_FRACTION` of each class of at least
    `MIN_CLASS_ROWS` rows, rounded, at least one; smaller classes train whole."""
    kept, held = stratified_split(
        codes, CHECK_FRACTION, seed, stream=_STREAM, rounding=lambda v: max(1, round(v))
    )
    counts = np.bincount(codes)
    small = counts[codes[held]] < MIN_CLASS_ROWS
    kept = np.sort(np.concatenate([kept, held[small]]))
    return kept, held[~small]


def run_check(Z: dict[str, np.ndarray], y_fit, y_check, seed: int) -> dict:
    """`never_worse` of the base and refined embeddings of the check rows against the rows
    that trained (Z keys: fit_before, fit_after, check_before, check_after)."""
    before = evaluate(Z["fit_before"], y_fit, Z["check_before"], y_check, seed=seed)
    after = evaluate(Z["fit_after"], y_fit, Z["check_after"], y_check, seed=seed)
    return never_worse(before, after, len(y_check))


def explain(check: dict, mode: str, plan) -> dict:
    """`check` with its sentence (`message`) and, when it is worse, what to try (`advice`)."""
    check = {**check, "message": describe(check)}
    if check["verdict"] != "better":
        check["advice"] = advice(mode, plan)
    return check


def advice(mode: str, plan) -> list[str]:
    """What to try when refinement made things worse, for this mode and plan."""
    fewer = max(1, plan.epochs // 2)
    if mode == "adapter":
        scale = plan.residual_scale if plan.residual_scale is not None else 1.0
        tips = [
            f"keep closer to the base embeddings: --residual-scale {scale / 2:g} (this run: "
            f"{scale:g}; 0 gives the base embeddings back)",
            f"train fewer epochs: --epochs {fewer} (this run: {plan.epochs})",
            "fine-tune the model itself: --mode finetune (slower; with a few rows a class it "
            "generalised better than the adapter on Banking77)",
        ]
    else:
        tips = [
            f"train fewer epochs: --epochs {fewer} (this run: {plan.epochs})",
            f"a lower learning rate: --lr {plan.lr / 3:.1g} (this run: {plan.lr:g})",
            "train a small adapter over the frozen model instead: --mode adapter",
        ]
    return [*tips, "label more rows, or keep the base embeddings: on this data they did better"]
