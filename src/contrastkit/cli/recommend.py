"""`contrastkit recommend fit | top | similar`: train the two-tower recommender on an
interactions file, then ask it for a user's top items (one user, or many to a file) or for the
items most like an item."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from contrastkit.cli import app, err, out, user_errors
from contrastkit.errors import ConfigError

recommend_app = typer.Typer(
    no_args_is_help=True,
    help="Recommend items: train a two-tower recommender (fit), then ask it (top, similar).",
)
app.add_typer(recommend_app, name="recommend")

OUTPUT_FORMATS = (".csv", ".jsonl", ".parquet")


@recommend_app.command("fit")
@user_errors
def fit(
    interactions: str = typer.Option(..., "--interactions", help="Interactions: CSV/TSV/JSONL/Parquet with user and item columns (rating, timestamp optional)."),
    out_dir: Path = typer.Option(..., "--out", help="Run folder for the model, metrics.json and report.html."),
    items: str | None = typer.Option(None, "--items", help="Items file: an item column and text columns (title, genres, ...) and/or a vector column."),
    user_column: str = typer.Option("user", help="User column of the interactions."),
    item_column: str = typer.Option("item", help="Item column of the interactions and items files."),
    rating_column: str | None = typer.Option(None, help="Rating column (default: rating, if present)."),
    timestamp_column: str | None = typer.Option(None, help="Timestamp column (default: timestamp, if present); numbers or ISO dates."),
    min_rating: float | None = typer.Option(None, help="Keep only interactions rated at least this (default: all are positives)."),
    item_text_columns: str | None = typer.Option(None, help="Text columns of the items file, comma-separated (default: those named title, description, genres, ...)."),
    item_vector_column: str | None = typer.Option(None, help="Column of the items file holding a vector per item."),
    epochs: int | None = typer.Option(None, help="Training epochs (default: 5)."),
    batch_size: int | None = typer.Option(None, help="Interactions per batch; the others' items are each one's negatives (default: 1024)."),
    temperature: float | None = typer.Option(None, help="Softmax temperature (default: 0.05)."),
    lr: float | None = typer.Option(None, help="Learning rate (default: 0.001)."),
    hard_negatives: int | None = typer.Option(None, help="Mined hard negatives per interaction (default: 0)."),
    id_dropout: float | None = typer.Option(None, help="Chance of dropping an item's id embedding in training, so text alone must place items (default: 0)."),
    logq: bool | None = typer.Option(None, "--logq/--no-logq", help="Correct in-batch negatives for item popularity (default: on)."),
    mask_hits: bool | None = typer.Option(None, "--mask-hits/--no-mask-hits", help="Leave a user's own items out of their negatives (default: on)."),
    item_text: bool | None = typer.Option(None, "--item-text/--no-item-text", help="Use the items' text (default: on when the items file has text)."),
    history: bool | None = typer.Option(None, "--history/--no-history", help="The user tower pools the user's history (default: on)."),
    user_ids: bool | None = typer.Option(None, "--user-ids/--no-user-ids", help="Add a learned user id embedding (default: off)."),
    text_model: str | None = typer.Option(None, help="Folder of a sentence-transformers model (default: the shipped all-MiniLM-L6-v2)."),
    seed: int | None = typer.Option(None, help="Random seed (default: 0)."),
    baselines: bool = typer.Option(True, "--baselines/--no-baselines", help="Measure the baselines in the same run."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing run in --out (the old run stays until the new one is complete)."),
    no_report: bool = typer.Option(False, "--no-report", help="Skip report.html."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
) -> None:  # fmt: skip
    """Train a two-tower recommender and measure it against the baselines on the same split."""
    from contrastkit.apps.recommend.data import Columns
    from contrastkit.apps.recommend.inputs import ReadOptions
    from contrastkit.apps.recommend.run import fit_run

    given = {
        "epochs": epochs, "batch_size": batch_size, "temperature": temperature, "lr": lr,
        "hard_negatives": hard_negatives, "id_dropout": id_dropout, "logq": logq, "mask_hits": mask_hits,
        "item_text": item_text, "history": history, "user_ids": user_ids,
        "text_model": text_model, "seed": seed,
    }  # fmt: skip
    read = ReadOptions(
        Columns(user_column, item_column, rating_column, timestamp_column),
        min_rating,
        item_column,
        _names(item_text_columns, "--item-text-columns"),
        item_vector_column,
    )
    try:
        result = fit_run(
            interactions,
            out_dir,
            items=items,
            read=read,
            options={k: v for k, v in given.items() if v is not None},
            overwrite=overwrite,
            report=not no_report,
            baselines=baselines,
            quiet=quiet,
        )
    except KeyboardInterrupt:
        err.print(f"interrupted; {out_dir} was left as it was, run the command again")
        raise typer.Exit(130) from None
    _print_metrics(result.metrics["models"])
    for note in result.notes:
        out.print(f"note: {note}")
    out.print(f"run folder: {result.run_dir}  ({result.timing['total_s']:.1f} s)")
    if (result.run_dir / "report.html").exists():
        out.print(f"report: {(result.run_dir / 'report.html').resolve()}")


def _names(value: str | None, flag: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    names = tuple(n.strip() for n in value.split(","))
    if not all(names):
        raise ConfigError(f"{flag} takes column names separated by commas, got {value!r}")
    return names


def _print_metrics(models: dict) -> None:
    table = Table(title="test metrics (leave-last-out, full ranking)", title_justify="left")
    for column in ("model", "HR@10", "NDCG@10", "Recall@20", "MRR", "coverage", "cold HR@10"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for name, m in models.items():
        t = m["test"]
        values = [t["hr@10"], t["ndcg@10"], t["recall@20"], t["mrr"], t["coverage@10"]]
        values.append(t["cold"]["hr@10"])
        table.add_row(name, *("n/a" if v is None else f"{v:.4f}" for v in values))
    out.print(table)


@recommend_app.command("top")
@user_errors
def top(
    model: Path = typer.Option(..., "--model", help="A model folder written by recommend fit (RUN_DIR/model)."),
    user: list[str] | None = typer.Option(None, "--user", help="User id (repeat for several users)."),
    users_file: Path | None = typer.Option(None, "--users-file", help="File of user ids: one per line, or a CSV/TSV/JSONL/Parquet with a user column."),
    all_users: bool = typer.Option(False, "--all-users", help="Every user the model knows."),
    k: int = typer.Option(10, "-k", "--k", min=1, help="How many items per user."),
    include_seen: bool = typer.Option(False, "--include-seen", help="Also recommend items the user already has."),
    out_path: Path | None = typer.Option(None, "--out", help="Write the recommendations to a .csv, .jsonl or .parquet file."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace --out if it exists."),
) -> None:  # fmt: skip
    """The top items for users: printed for a few, written to --out for many."""
    from contrastkit.apps.recommend.output import read_user_ids, write_recommendations
    from contrastkit.apps.recommend.recommender import Recommender

    if sum(x is not None and x is not False for x in (user or None, users_file, all_users)) != 1:
        raise ConfigError("name the users with exactly one of --user, --users-file or --all-users")
    if out_path is not None:
        _check_output(out_path, [model] + ([users_file] if users_file else []), overwrite)
    rec = Recommender.load(model)
    users = list(user or []) or (
        [str(u) for u in rec.user_ids_] if all_users else read_user_ids(users_file)
    )
    if out_path is None:
        if len(users) > 20:
            raise ConfigError(f"{len(users)} users are too many to print; write them with --out")
        for answer in rec.recommend(users, k=k, exclude_seen=not include_seen):
            _print_answer(f"user {answer.query}", answer)
        return
    count = write_recommendations(rec, users, k, not include_seen, out_path)
    out.print(f"wrote the top {k} items of {len(users):,} users to {out_path} ({count:,} rows)")


@recommend_app.command("similar")
@user_errors
def similar(
    model: Path = typer.Option(..., "--model", help="A model folder written by recommend fit (RUN_DIR/model)."),
    item: list[str] = typer.Option(..., "--item", help="Item id (repeat for several items)."),
    k: int = typer.Option(10, "-k", "--k", min=1, help="How many items per item."),
) -> None:  # fmt: skip
    """The items whose vectors are closest to an item's."""
    from contrastkit.apps.recommend.recommender import Recommender

    rec = Recommender.load(model)
    for answer in rec.similar_items(item, k=k):
        _print_answer(f"items like {answer.query}", answer)


def _print_answer(title: str, answer) -> None:
    table = Table(title=title, title_justify="left")
    popular = answer.note is not None  # the fallback ranks by training interactions
    for column in ("rank", "item", "title", "interactions" if popular else "score"):
        table.add_column(column, justify="left" if column in ("item", "title") else "right")
    for rank, (item, name, score) in enumerate(
        zip(answer.items, answer.titles, answer.scores, strict=True), start=1
    ):
        table.add_row(str(rank), item, name, f"{score:.0f}" if popular else f"{score:.4f}")
    out.print(table)
    if answer.note:
        out.print(f"note: {answer.note}")


def _check_output(path: Path, inputs: list[Path], overwrite: bool) -> None:
    if path.suffix.lower() not in OUTPUT_FORMATS:
        raise ConfigError(f"--out {path} must end in {', '.join(OUTPUT_FORMATS)}")
    target = path.resolve()
    for source in inputs:
        if target == source.resolve() or source.resolve() in target.parents:
            raise ConfigError(f"--out {path} is one of the inputs; write to another path")
    if target.is_dir():
        raise ConfigError(f"--out {path} is a folder; give a file name ending in .csv")
    if target.exists() and not overwrite:
        raise ConfigError(f"--out {path} already exists; pass --overwrite to replace it")
