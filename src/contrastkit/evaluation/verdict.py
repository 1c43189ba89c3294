"""Did refinement make things better or worse? Two comparisons of `evaluate` results.

- `versus_frozen_linear`: every refined accuracy beside the frozen embeddings' linear probe,
  the baseline a user already has (base embeddings + logistic regression).
- `never_worse`: the refined embeddings against the frozen ones on each of kNN-1, linear
  probe and MAP@R, and whether the better of refined kNN-1 / linear probe beats the frozen
  linear probe. `refine` runs it on held-out training rows (never the test set).
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
    rows: which of kNN-1, linear probe and MAP@R went down (`worse`, any drop counts), and
    whether the better refined classifier beats the frozen linear probe (`beats_frozen_linear`).
    `verdict`: "worse" when a metric went down, else "no gain" when no refined classifier beats
    the frozen linear probe, else "better"."""
    compared = [k for k in GUARDED if k in before and k in after]
    worse = [k for k in compared if float(after[k]) < float(before[k])]
    refined = [float(after[k]) for k in ("knn1_accuracy", "linear_accuracy") if k in after]
    beats = bool(refined) and BASELINE in before and max(refined) > float(before[BASELINE])
    return {
        "rows": int(rows),
        "before": {k: float(before[k]) for k in compared},
        "after": {k: float(after[k]) for k in compared},
        "worse": worse,
        "beats_frozen_linear": beats,
        "verdict": "worse" if worse else "no gain" if not beats else "better",
    }


def describe(check: Mapping) -> str:
    """One plain sentence for a `never_worse` result."""
    rows = check["rows"]
    changes = ", ".join(
        f"{NAMES[k]} {_fmt(k, check['before'][k])} -> {_fmt(k, check['after'][k])}"
        for k in check["before"]
    )
    if check["verdict"] == "better":
        return (
            f"on {rows:,} held-out training rows the refined embeddings are at least as good as "
            f"the base ones ({changes}) and beat a linear probe on the base embeddings"
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
