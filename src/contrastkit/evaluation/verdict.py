"""Did refinement make things better or worse? Two comparisons of `evaluate` results.

- `versus_frozen_linear`: every refined accuracy beside the frozen embeddings' linear probe,
  the baseline a user already has (base embeddings + logistic regression).
- `never_worse`: the refined embeddings against the frozen ones on each of kNN-1, linear
  probe and MAP@R (a drop counts when it is larger than the held-out rows can tell from
  chance), and whether the better of refined kNN-1 / linear probe beats the frozen linear probe. `refine` runs it on held-out training rows (never the test set).
"""

from __future__ import annotations

from collections.abc import Mapping

# The metrics refinement must not lower, and the baseline its classifiers must beat.
GUARDED = ("knn1_accuracy", "linear_accuracy", "map_at_r")
ACCURACIES = ("knn1_accuracy", "knn10_accuracy", "linear_accuracy")
BASELINE = "linear_accuracy"
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
    rows: which of kNN-1, linear probe and MAP@R went down by more than `rows` rows can tell
    (`worse`; see `noise`), which went down by less (`within_noise`), and whether the better
    refined classifier beats the frozen linear probe (`beats_frozen_linear`).
    `verdict`: "worse" when a metric went down beyond the noise, else "no gain" when no refined
    classifier beats the frozen linear probe, else "better"."""
    compared = [k for k in GUARDED if k in before and k in after]
    drops = {k: float(before[k]) - float(after[k]) for k in compared}
    worse = [k for k in compared if drops[k] > noise(k, float(before[k]), rows)]
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


def noise(key: str, before: float, rows: int) -> float:
    """The largest drop that `rows` held-out rows cannot tell from chance: for an accuracy p,
    one standard error of the difference of two accuracies on those rows, sqrt(2 p (1 - p) /
    rows), and at least one row (1 / rows); for MAP@R (a mean of per-row values in [0, 1])
    one row's whole weight, 1 / rows."""
    one_row = 1.0 / max(rows, 1)
    if key == "map_at_r":
        return one_row
    return max(one_row, (2.0 * before * (1.0 - before) / max(rows, 1)) ** 0.5)


def describe(check: Mapping) -> str:
    """One plain sentence for a `never_worse` result."""
    rows = check["rows"]
    changes = ", ".join(
        f"{NAMES[k]} {_fmt(k, check['before'][k])} -> {_fmt(k, check['after'][k])}"
        for k in check["before"]
    )
    if check["verdict"] == "better":
        hedge = " within what that many rows can tell" if check.get("within_noise") else ""
        return (
            f"on {rows:,} held-out training rows the refined embeddings are at least as good as "
            f"the base ones{hedge} ({changes}) and beat a linear probe on the base embeddings"
        )
    noise = f"{changes}; one row is {100 / max(rows, 1):.2f} points"
    if check["verdict"] == "no gain":
        return (
            f"refinement gained nothing: on {rows:,} held-out training rows no refined "
            f"classifier beat a linear probe on the base embeddings ({noise})"
        )
    lowered = ", ".join(NAMES[k] for k in check["worse"])
    return (
        f"refinement made things worse: on {rows:,} held-out training rows it lowered "
        f"{lowered} ({noise})"
    )


def _fmt(key: str, value: float) -> str:
    return f"{value:.3f}" if key == "map_at_r" else f"{100 * value:.2f} %"
