"""`contrastkit embed` and `contrastkit evaluate`: use a refined model, and measure embeddings."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from contrastkit.cli import app, out, user_errors
from contrastkit.errors import UserError


@app.command()
@user_errors
def embed(
    model: Path = typer.Option(
        ..., "--model", help="A model folder written by refine (RUN/model)."
    ),
    input_path: str = typer.Option(
        ..., "--input", help="Rows to embed (same kind of data as training)."
    ),
    out_path: Path = typer.Option(..., "--out", help="Output .parquet or .npy file."),
    text_column: str | None = typer.Option(None, help="Text column (default: text)."),
    vector_column: str | None = typer.Option(None, help="Column holding a vector per row."),
    base: bool = typer.Option(
        False, "--base", help="Embed with the base model (before refinement)."
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace --out if it exists (it is replaced only once complete)."
    ),
) -> None:
    """Embed rows with a refined model. Under torchrun every process embeds a block of the rows
    and rank 0 writes --out."""
    from contrastkit.apps.shards import embed_sharded, join_torchrun
    from contrastkit.data import read_dataset
    from contrastkit.io.embeddings import write_embeddings
    from contrastkit.refiner import Refiner

    check_output(out_path, [Path(input_path), model], overwrite)
    refiner = Refiner.load(model)
    data = read_dataset(input_path, text_column=text_column, vector_column=vector_column)
    info = join_torchrun()
    encode = refiner.base_transform if base else refiner.transform
    Z = embed_sharded(encode, data.inputs, info)
    if not info.is_main:
        return
    write_embeddings(out_path, Z, data.labels)
    out.print(f"wrote {Z.shape[0]} embeddings of dimension {Z.shape[1]} to {out_path}")


def check_output(path: Path, inputs: list[Path], overwrite: bool) -> None:
    """An output file may not be one of the inputs (or inside an input folder), and replaces an
    existing file only with --overwrite."""
    target = path.resolve()
    for source in inputs:
        source = source.resolve()
        if target == source or source in target.parents:
            raise UserError(
                f"--out {path} is one of the inputs ({source}); write the output to another path"
            )
    if target.is_dir():
        raise UserError(f"--out {path} is a folder; give a file name ending in .parquet or .npy")
    if target.exists() and not overwrite:
        raise UserError(
            f"--out {path} already exists; pass --overwrite to replace it, or choose another path"
        )


@app.command()
@user_errors
def evaluate(
    train: str | None = typer.Option(None, "--train", help="Labelled training (reference) data."),
    test: str | None = typer.Option(None, "--test", help="Labelled test data."),
    model: Path | None = typer.Option(None, "--model", help="A model folder written by refine."),
    embeddings: Path | None = typer.Option(
        None, "--embeddings", help="An embeddings.parquet from a run (train and test splits)."
    ),
    text_column: str | None = typer.Option(None, help="Text column (default: text)."),
    label_column: str | None = typer.Option(None, help="Label column."),
    out_path: Path | None = typer.Option(None, "--out", help="Write the metrics as JSON here."),
) -> None:
    """Metrics (kNN, linear probe, retrieval, clustering, geometry) of a model or of embeddings."""
    from contrastkit.data import encode_labels, read_train_test
    from contrastkit.evaluation import evaluate as compute
    from contrastkit.io.atomic import json_safe, write_json_atomic
    from contrastkit.io.embeddings import read_run_embeddings

    if (model is None) == (embeddings is None):
        raise UserError("give exactly one of --model (with --train and --test) or --embeddings")
    if embeddings is not None:
        Z_train, y_train, Z_test, y_test = read_run_embeddings(embeddings)
    else:
        if train is None or test is None:
            raise UserError("--model needs labelled --train and --test data")
        from contrastkit.refiner import Refiner

        refiner = Refiner.load(model)
        columns = dict(text_column=text_column, label_column=label_column)
        train_ds, test_ds = read_train_test(train, test, **columns)
        if train_ds.labels is None or test_ds.labels is None:
            raise UserError("evaluation needs labels in both --train and --test")
        Z_train, Z_test = refiner.transform(train_ds.inputs), refiner.transform(test_ds.inputs)
        y_train, y_test = train_ds.labels, test_ds.labels
    labels = encode_labels(y_train, y_test)
    metrics = compute(Z_train, labels.train, Z_test, labels.test)
    table = Table("metric", "value")
    for key, value in metrics.items():
        table.add_row(key, f"{value:.4f}")
    out.print(table)
    if out_path is not None:
        write_json_atomic(out_path, json_safe(metrics))
