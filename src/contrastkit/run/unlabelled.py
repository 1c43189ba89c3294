"""`contrastkit refine --unlabelled FILE`: the rows without labels that train beside the labelled
ones (`contrastkit.refiner.unlabelled`), read with the training file's column options, and what
a reader of the metrics should know about them.

An unlabelled file may share rows with the test file. The model then trains on those test
rows without their labels (transductive learning): fair when the rows to classify are at hand
while training, as with a batch of new tickets to sort, but the metrics then no longer measure
rows the model has never seen, so the run says how many test rows it saw.
"""

from __future__ import annotations

import warnings

from contrastkit.config.unlabelled import plan_unlabelled
from contrastkit.data.readers import has_split, read_dataset
from contrastkit.errors import DataError
from contrastkit.io.run_folder import fingerprint
from contrastkit.methods.registry import get_method
from contrastkit.refiner.prepare import resolve_mode


def read_unlabelled(path: str, columns: dict, data) -> object:
    """The rows of `path` (labels, if any, dropped with a warning), checked against the run's
    training data `data` (a `RunData`); a note when they share rows with the evaluation rows."""
    columns = {k: v for k, v in columns.items() if k in ("text_column", "vector_column")}
    split = "train" if has_split(path, "train") else None
    dataset = read_dataset(path, split=split, **columns)
    if dataset.kind != data.kind:
        raise DataError(
            f"the unlabelled data ({dataset.source}) holds {dataset.kind} but the training data "
            f"holds {data.kind}"
        )
    if dataset.labels is not None:
        column = f" (column '{dataset.label_column}')" if dataset.label_column else ""
        warnings.warn(
            f"the labels of {dataset.source}{column} are ignored: its rows train as unlabelled "
            "rows",
            stacklevel=3,
        )
    if data.X_eval is not None:
        from contrastkit.run.job import overlap  # the job imports this module

        shared = overlap(data.X_eval, dataset.inputs)
        if shared:
            warnings.warn(
                f"{shared:.1%} of the evaluation rows are also in the unlabelled data "
                f"{dataset.source}: the model trains on them without their labels, so the "
                "metrics will be those of rows it has seen (transductive), not of unseen rows",
                stacklevel=3,
            )
    return dataset.inputs


def unlabelled_config(refiner, path: str | None, plan, kind: str) -> tuple[dict | None, dict]:
    """(the file's entry for config.yaml's data, the resolved unlabelled options): what
    `--resume` checks; (None, {}) without an unlabelled file. `plan`: the run's plan (its
    method), `kind`: the training rows' kind; together they give the mode."""
    if path is None:
        return None, {}
    mode = resolve_mode(get_method(plan.method), refiner.config, kind)
    options = plan_unlabelled(refiner.config, kind, mode).resolved()
    return {"path": str(path), **fingerprint(path)}, options
