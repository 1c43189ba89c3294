"""`contrastkit dedup`: groups of duplicate rows, and the pairs behind them."""

from __future__ import annotations

from pathlib import Path

import typer

from contrastkit.cli import app, out, user_errors
from contrastkit.cli.search import (
    ID_COLUMN,
    KIND,
    MODEL,
    OVERWRITE,
    QUIET,
    TEXT_COLUMN,
    VECTOR_COLUMN,
    check_table_output,
)
from contrastkit.errors import DataError, UserError


def read_labelled_pairs(
    path: str, pair_columns: str | None, label_column: str | None
) -> tuple[list[tuple[str, str]], list[int]]:
    """(pairs, 0/1 labels) from a file of labelled text pairs (sentence1,sentence2,label)."""
    from contrastkit.cli.refine import pair_columns as parse_pair_columns
    from contrastkit.data import read_dataset

    columns = parse_pair_columns(pair_columns)
    if columns is None:
        columns = ("sentence1", "sentence2")
    data = read_dataset(path, pair_columns=columns, label_column=label_column, require_labels=True)
    labels = [str(v).strip() for v in data.labels]
    if not set(labels) <= {"0", "1"}:
        shown = ", ".join(sorted(set(labels) - {"0", "1"})[:3])
        raise DataError(
            f"the labels of {path} must be 1 (duplicates) or 0 (not), got {shown}; "
            "pass --label-column if another column holds them"
        )
    return list(data.inputs), [int(v) for v in labels]


@app.command("dedup")
@user_errors
def dedup_command(
    input_path: str = typer.Option(..., "--input", help="Rows to deduplicate: CSV/TSV/JSONL/Parquet (a text or vector column) or NPY vectors."),
    out_path: Path = typer.Option(..., "--out", help="Groups file (.csv/.tsv/.jsonl/.parquet): row, id, group, group_size, keep, text."),
    pairs_path: Path | None = typer.Option(None, "--pairs", help="Also write the duplicate pairs here: a, b, score (and ids and texts)."),
    model: str | None = MODEL,
    threshold: float | None = typer.Option(None, "--threshold", min=-1.0, max=1.0, help="Cosine at or above which two rows are duplicates (default 0.9, chosen for the shipped all-MiniLM-L6-v2)."),
    calibrate: str | None = typer.Option(None, "--calibrate", help="Labelled pairs (sentence1,sentence2,label; 1 = duplicates) to choose the F1-best threshold on."),
    pair_columns: str | None = typer.Option(None, help="The two text columns 'a,b' of --calibrate (default sentence1,sentence2)."),
    label_column: str | None = typer.Option(None, help="The label column of --calibrate (default: label)."),
    text_column: str | None = TEXT_COLUMN,
    vector_column: str | None = VECTOR_COLUMN,
    id_column: str | None = ID_COLUMN,
    kind: str = KIND,
    max_pairs: int = typer.Option(50_000_000, "--max-pairs", min=1, help="Stop with an error beyond this many pairs (memory)."),
    overwrite: bool = OVERWRITE,
    quiet: bool = QUIET,
) -> None:  # fmt: skip
    """Find the duplicate rows of --input: pairs above a threshold and their groups."""
    from contrastkit.apps.dedup import duplicates_of_embeddings
    from contrastkit.apps.dedup.finder import choose_threshold
    from contrastkit.apps.embedder import load_embedder
    from contrastkit.apps.tables import read_rows
    from contrastkit.index.kinds import check_kind

    check_kind(kind)
    sources = [Path(p) for p in (input_path, model, calibrate) if p is not None]
    check_table_output(out_path, sources, overwrite)
    if pairs_path is not None:
        if pairs_path.resolve() == out_path.resolve():
            raise UserError("--pairs and --out name the same file; give two different files")
        check_table_output(pairs_path, sources, overwrite)
    rows = read_rows(
        input_path, text_column=text_column, vector_column=vector_column, id_column=id_column,
        metadata_columns=[],
    )  # fmt: skip
    calibration = None
    if calibrate is not None:
        calibration = read_labelled_pairs(calibrate, pair_columns, label_column)
    embedder = load_embedder(model, vectors=model is None and rows.kind == "vectors")
    value, source = choose_threshold(embedder, threshold, calibration)
    Z = embedder.encode(rows.inputs, progress=not quiet)
    found = duplicates_of_embeddings(
        Z, value, source, ids=rows.ids, kind=kind, max_pairs=max_pairs, progress=not quiet
    )
    _write(found, rows, out_path, pairs_path)


def _write(found, rows, out_path: Path, pairs_path: Path | None) -> None:
    from contrastkit.apps.tables import write_table

    table = found.table()
    texts = rows.texts
    if texts is not None:
        table["text"] = texts
    write_table(out_path, table)
    if pairs_path is not None:
        pairs = found.pairs
        if texts is not None:
            pairs = pairs.assign(
                text_a=[texts[i] for i in pairs["a"]], text_b=[texts[i] for i in pairs["b"]]
            )
        write_table(pairs_path, pairs)
    s = found.summary()
    out.print(f"threshold {s['threshold']:.4f} ({s['threshold_source']})")
    out.print(
        f"{s['rows']} rows: {s['pairs']} duplicate pairs, {s['groups_with_duplicates']} groups "
        f"of duplicates holding {s['rows_in_those_groups']} rows; keeping the first of each "
        f"group leaves {s['rows_kept']} rows"
    )
    written = f"{out_path}" + (f" and {pairs_path}" if pairs_path is not None else "")
    out.print(f"wrote {written}")
