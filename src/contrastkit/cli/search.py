"""`contrastkit index`, `contrastkit search` and `contrastkit dedup`: semantic search and
duplicate detection with a refined model, a sentence-transformers model or plain vectors.

`index` also runs under torchrun: every process embeds a block of the rows and rank 0 builds
and writes the index folder."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from contrastkit.cli import app, out, user_errors
from contrastkit.cli.embed import check_output
from contrastkit.errors import UserError

# fmt: off
MODEL = typer.Option(None, "--model", help="A refined model folder, a sentence-transformers folder, or unset: the shipped all-MiniLM-L6-v2 for text, the vectors as they are.")
TEXT_COLUMN = typer.Option(None, help="Text column (default: text).")
VECTOR_COLUMN = typer.Option(None, help="Column holding a vector per row.")
ID_COLUMN = typer.Option(None, help="Column of row ids (default: a column named id, else row numbers from 0).")
QUIET = typer.Option(False, "--quiet", help="No progress bars.")
OVERWRITE = typer.Option(False, "--overwrite", help="Replace --out if it exists (only once the new one is complete).")
KIND = typer.Option("auto", "--kind", help="Index kind: auto (exact up to 200 000 rows, IVF above), flat, ivf, ivf-sq8, ivf-pq.")
# fmt: on


def check_folder_output(
    path: Path, inputs: list[Path], overwrite: bool, update: bool = False
) -> None:
    """An output folder may not be an input, hold one, or lie inside one; it replaces an
    existing folder only with --overwrite, and --update/--remove need it to exist."""
    target = path.resolve()
    for source in inputs:
        source = source.resolve()
        if target == source or source in target.parents or target in source.parents:
            raise UserError(
                f"--out {path} overlaps the input {source}; write the index to another folder"
            )
    if target.is_file():
        raise UserError(f"--out {path} is a file; give a folder for the index")
    if update and not target.exists():
        raise UserError(f"--out {path} does not exist; build the index first (without --update)")
    if target.exists() and not (update or overwrite):
        raise UserError(
            f"--out {path} already exists; pass --overwrite to replace it, --update to add "
            "rows to it, or choose another folder"
        )


def check_table_output(path: Path, inputs: list[Path], overwrite: bool) -> None:
    """`check_output`, and a name ending in a table format we write."""
    from contrastkit.apps.tables import check_table_name

    check_output(path, inputs, overwrite)
    check_table_name(path)


def _paths(*values) -> list[Path]:
    return [Path(v) for v in values if v is not None]


@app.command("index")
@user_errors
def index_command(
    out_dir: Path = typer.Option(..., "--out", help="The index folder to write."),
    input_path: str | None = typer.Option(None, "--input", help="Rows to index: CSV/TSV/JSONL/Parquet (a text or vector column; other columns become metadata) or NPY vectors."),
    model: str | None = MODEL,
    text_column: str | None = TEXT_COLUMN,
    vector_column: str | None = VECTOR_COLUMN,
    id_column: str | None = ID_COLUMN,
    metadata: str | None = typer.Option(None, "--metadata", help="Metadata columns 'a,b' (default: every other column; '' for none)."),
    kind: str = KIND,
    recall: float = typer.Option(0.95, "--recall", help="Recall@10 an approximate index is tuned to reach on a sample of the rows."),
    update: bool = typer.Option(False, "--update", help="Add the --input rows to the index in --out."),
    remove: Path | None = typer.Option(None, "--remove", help="A text file of ids (one a line) to remove from the index in --out."),
    overwrite: bool = OVERWRITE,
    quiet: bool = QUIET,
) -> None:  # fmt: skip
    """Build a search index folder from --input (or change one with --update / --remove)."""
    from contrastkit.apps.shards import join_torchrun
    from contrastkit.apps.tables import read_rows
    from contrastkit.index.kinds import check_kind

    if input_path is None and remove is None:
        raise UserError("give --input rows to index (or --remove FILE to remove rows)")
    check_kind(kind)
    changing = update or remove is not None
    check_folder_output(out_dir, _paths(input_path, model, remove), overwrite, update=changing)
    columns = None if metadata is None else [c.strip() for c in metadata.split(",") if c.strip()]
    rows = None
    if input_path is not None:
        rows = read_rows(
            input_path, text_column=text_column, vector_column=vector_column,
            id_column=id_column, metadata_columns=columns,
        )  # fmt: skip
    info = join_torchrun()
    if changing:
        _change_index(out_dir, model, rows, remove, info, quiet)
    else:
        _build_index(out_dir, model, rows, kind, recall, overwrite, info, quiet)


def _build_index(out_dir, model, rows, kind, recall, overwrite, info, quiet) -> None:
    from contrastkit.apps.embedder import load_embedder
    from contrastkit.apps.search import SearchIndex
    from contrastkit.apps.shards import embed_sharded

    embedder = load_embedder(model, vectors=model is None and rows.kind == "vectors")
    Z = embed_sharded(lambda x: embedder.encode(x, progress=_bars(quiet, info)), rows.inputs, info)
    if not info.is_main:
        return
    index = SearchIndex.from_embeddings(
        Z, embedder, ids=rows.ids, texts=rows.texts, metadata=rows.metadata, kind=kind,
        recall=recall,
    )  # fmt: skip
    index.save(out_dir, overwrite=overwrite)
    _report(index, out_dir, "indexed")


def _change_index(out_dir, model, rows, remove, info, quiet) -> None:
    from contrastkit.apps.search import SearchIndex
    from contrastkit.apps.shards import embed_sharded
    from contrastkit.apps.tables import read_ids

    index = SearchIndex.load(out_dir, model=model)
    Z = None
    if rows is not None:
        encode = index.embedder.encode
        Z = embed_sharded(lambda x: encode(x, progress=_bars(quiet, info)), rows.inputs, info)
    if not info.is_main:
        return
    if remove is not None:
        removed = index.remove(read_ids(remove))
        out.print(f"removed {removed} rows")
    if rows is not None:
        index.add_embeddings(Z, ids=rows.ids, texts=rows.texts, metadata=rows.metadata)
        out.print(f"added {len(Z)} rows")
    index.save(out_dir, overwrite=True)
    _report(index, out_dir, "the index holds")


def _bars(quiet: bool, info) -> bool:
    """Progress bars: unless --quiet, and under torchrun on rank 0 only."""
    return not quiet and info.is_main


def _report(index, out_dir: Path, verb: str) -> None:
    probe = index.probe
    how = (
        "exact search"
        if index.kind == "flat"
        else f"probes {probe.nprobe} cells, recall@10 {probe.recall:.3f} on {probe.sample} rows"
    )
    out.print(
        f"{verb} {len(index)} rows of dimension {index.dim} in {out_dir} (kind {index.kind}: {how})"
    )


def parse_where(conditions: list[str]) -> dict[str, list[str]]:
    """`col=value` flags as {col: [values]}: values of one column are alternatives (or),
    different columns must all match (and)."""
    parsed: dict[str, list[str]] = {}
    for condition in conditions:
        column, sep, value = condition.partition("=")
        if not sep or not column.strip():
            raise UserError(
                f"--where {condition!r} is not COLUMN=VALUE; write e.g. --where lang=en"
            )
        parsed.setdefault(column.strip(), []).append(value)
    return parsed


@app.command("search")
@user_errors
def search_command(
    index_dir: Path = typer.Option(..., "--index", help="An index folder written by `contrastkit index`."),
    query: list[str] = typer.Option([], "--query", "-q", help="A query text (repeat for more)."),
    queries: str | None = typer.Option(None, "--queries", help="A file of queries (texts or vectors, like --input of index)."),
    k: int = typer.Option(10, "-k", "--k", min=1, help="Results per query."),
    where: list[str] = typer.Option([], "--where", help="Only rows whose metadata COLUMN=VALUE (repeat: same column = any of, other columns = all of)."),
    model: str | None = typer.Option(None, "--model", help="The model to embed queries with (default: the one the index was built with; another is refused)."),
    text_column: str | None = TEXT_COLUMN,
    vector_column: str | None = VECTOR_COLUMN,
    out_path: Path | None = typer.Option(None, "--out", help="Write the results to .csv/.tsv/.jsonl/.parquet instead of printing them."),
    overwrite: bool = OVERWRITE,
    quiet: bool = QUIET,
) -> None:  # fmt: skip
    """The rows of an index most similar to each query."""
    from contrastkit.apps.search import SearchIndex, hits_frame
    from contrastkit.apps.tables import read_rows, write_table

    if bool(query) == (queries is not None):
        raise UserError("give --query TEXT (one or more) or --queries FILE")
    if out_path is not None:
        check_table_output(out_path, _paths(index_dir, queries, model), overwrite)
    conditions = parse_where(where)
    index = SearchIndex.load(index_dir, model=model)
    inputs = list(query)
    if queries is not None:
        inputs = read_rows(
            queries, text_column=text_column, vector_column=vector_column, metadata_columns=[]
        ).inputs
    Q = index.embedder.encode(inputs, progress=not quiet)
    results = index.search_embeddings(Q, k=k, where=conditions)
    frame = hits_frame(results, inputs if isinstance(inputs, list) else None)
    if out_path is not None:
        write_table(out_path, frame)
        out.print(f"wrote {len(frame)} results for {len(results)} queries to {out_path}")
        return
    for q, hits in enumerate(results):
        title = f"query: {inputs[q]}" if isinstance(inputs, list) else f"query row {q}"
        _print_hits(title, hits)


def _print_hits(title: str, hits) -> None:
    table = Table(title=title, title_justify="left")
    for column in ("rank", "score", "id", "text"):
        table.add_column(column, justify="right" if column in ("rank", "score") else "left")
    meta = list(hits[0].metadata) if hits else []
    for column in meta:
        table.add_column(column)
    for rank, hit in enumerate(hits, start=1):
        values = [str(rank), f"{hit.score:.4f}", str(hit.id), hit.text or ""]
        table.add_row(*values, *(str(hit.metadata[c]) for c in meta))
    out.print(table)
    if not hits:
        out.print("no row matches the --where conditions")


# The dedup command registers itself on `app` when imported.
from contrastkit.cli import dedup  # noqa: E402, F401
