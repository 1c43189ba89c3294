"""Did refinement make things better or worse? Two comparisons of `evaluate` results.

- `versus_frozen_linear`: every refined accuracy beside the frozen embeddings' linear probe,
  the baseline a user already has (base embeddings + logistic regression).
- `never_worse`: the refined embeddings against the frozen ones on each of kNN-1, linear
  probe and MAP@R (a drop counts when it is more than one row and half a point), and whether the better of refined kNN-1 / linear probe beats the frozen linear probe. `refine` runs it on held-out training rows (never the test set).
"""

from __future__ import annotations

from collections.abc import Mapping

# The metrics refinement must not lower, and the baseline its classifiers must beat.
GUARDED = ("knn1_accuracy", "linear_accuracy", "map_at_r")
ACCURACIES = ("knn1_accuracy", "knn10_accuracy", "linear_accuracy")
BASELINE = "linear_accuracy"
MIN_DROP = 0.005
NAMES = {"knn1_accuracy": "kNN-1", "linear_accuracy": "linear probe", "map_at_r": "MAP@R"}


def versus_frozen_linear(before: Mapping[str, float], after: Mapping[str, float]) -> dict:
    """{"frozen_linear_accuracy": b, "<accuracy>": refined minus b, ...} for every refined
    accuracy; {} when the frozen linear probe is not among `before`."""
    if BASELINE not in before:
        return {}
    base = float(before[BASELINE])
    out: dict[str, float] = {"frozen_linear_accuracy": base}
    out.update({k: float(after[k]) - base for k in ACCURACIES if k in after})
    return out


def never_worse(before: Mapping[str, float], after: Mapping[str, float], rows: int) -> dict:
    """The refined metrics (`after`) against the frozen ones (`before`), measured on `rows`
    rows: which of kNN-1, linear probe and MAP@R went down by more than one row (`worse`; see
    `noise`), which went down by less (`within_noise`), and whether the better
    refined classifier beats the frozen linear probe (`beats_frozen_linear`).
    `verdict`: "worse" when a metric went down beyond the noise, else "no gain" when no refined
    classifier beats the frozen linear probe, else "better"."""
    compared = [k for k in GUARDED if k in before and k in after]
    drops = {k: float(before[k]) - float(after[k]) for k in compared}
    worse = [k for k in compared if drops[k] > noise(rows) + 1e-9]
    within = [k for k in compared if 0 < drops[k] and k not in worse]
    refined = [float(after[k]) for k in ("knn1_accuracy", "linear_accuracy") if k in after]
    beats = bool(refined) and BASELINE in before and max(refined) > float(before[BASELINE])
    return {
        "rows": int(rows),
        "before": {k: float(before[k]) for k in compared},
        "after": {k: float(after[k]) for k in compared},
        "worse": worse,
        "within_noise": within,
        "beats_frozen_linear": beats,
        "verdict": "worse" if worse else "no gain" if not beats else "better",
    }


def noise(rows: int) -> float:
    """The largest drop of a guarded metric (an accuracy or MAP@R, both in [0, 1]) that the
    check lets pass on `rows` held-out rows: one row's weight (1 / rows), and at least half a point
    (MIN_DROP). A one-row change is what a different seed gives; a standard error would be
    larger, but would hide the drops the check exists for (on Banking77's 5-shot split, the old
    adapter plan lowered the probe by 2 of 77 held-out rows, and by 1.4 points on test.csv)."""
    return max(1.0 / max(rows, 1), MIN_DROP)


def describe(check: Mapping) -> str:
    """One plain sentence for a `never_worse` result."""
    rows = check["rows"]
    changes = ", ".join(
        f"{NAMES[k]} {_fmt(k, check['before'][k])} -> {_fmt(k, check['after'][k])}"
        for k in check["before"]
    )
    if check["verdict"] == "better":
        hedge = " within one row" if check.get("within_noise") else ""
        return (
            f"on {rows:,} held-out training rows the refined embeddings are at least as good as "
            f"the base ones{hedge} ({changes}) and beat a linear probe on the base embeddings"
        )
    detail = f"{changes}; one row is {100 / max(rows, 1):.2f} points"
    if check["verdict"] == "no gain":
        return (
            f"refinement gained nothing: on {rows:,} held-out training rows no refined "
            f"classifier beat a linear probe on the base embeddings ({detail})"
        )
    lowered = ", ".join(NAMES[k] for k in check["worse"])
    return (
        f"refinement made things worse: on {rows:,} held-out training rows it lowered "
        f"{lowered} ({detail})"
    )


def _fmt(key: str, value: float) -> str:
    return f"{value:.3f}" if key == "map_at_r" else f"{100 * value:.2f} %"
