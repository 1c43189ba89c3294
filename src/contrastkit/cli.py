"""The `contrastkit` command line: refine, embed, evaluate, demo."""

from __future__ import annotations

import functools
import sys
import warnings
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from contrastkit import __version__
from contrastkit.errors import UserError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Refine embeddings with contrastive learning, and see what it did.",
)
out = Console()
err = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"contrastkit {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """Refine embeddings with contrastive learning, and see what it did."""


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    # One line each (soft_wrap), the text as written: a "[name]" in it is not rich markup.
    err.print(f"[yellow]warning:[/yellow] {escape(str(message))}", highlight=False, soft_wrap=True)


def user_errors(fn):
    """Errors a user can cause: one sentence on stderr and exit code 2, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        warnings.showwarning = _show_warning
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            line = " ".join(str(exc).split())  # one line, whatever the message holds
            err.print(f"[red]error:[/red] {escape(line)}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err.print(
                "interrupted; rerun the same command with --resume to continue from the last checkpoint"
            )
            raise typer.Exit(130) from None

    return wrapper


def _options(values: dict, config_file: Path | None) -> dict:
    """Flags the user gave, over the config file's keys, over the defaults."""
    from contrastkit.training.config import load_config_file

    merged = load_config_file(config_file) if config_file else {}
    merged.update({k: v for k, v in values.items() if v is not None})
    return merged


def print_metrics(before: dict, after: dict, title: str) -> None:
    from contrastkit.evaluation import LOWER_IS_BETTER, METRIC_KEYS

    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    table.add_column("before", justify="right")
    table.add_column("after", justify="right")
    table.add_column("change", justify="right")
    extra = [k for k in after if k not in METRIC_KEYS]  # e.g. spearman for scored pairs
    for key in [*METRIC_KEYS, *extra]:
        if key not in after or key not in before:
            continue
        b, a = before.get(key), after[key]
        better = (a < b) if key in LOWER_IS_BETTER else (a > b)
        colour = "green" if better else ("red" if a != b else "white")
        table.add_row(key, f"{b:.4f}", f"{a:.4f}", f"[{colour}]{a - b:+.4f}[/{colour}]")
    out.print(table)


# fmt: off
@app.command()
@user_errors
def refine(
    train: str = typer.Option(..., "--train", help="Training data: CSV/TSV/JSONL/Parquet/NPY/NPZ or an image folder."),
    out_dir: Path = typer.Option(..., "--out", help="Run folder for model, embeddings, metrics and report."),
    test: str | None = typer.Option(None, "--test", help="Test data for the before/after metrics (else 10 % of train is held out)."),
    text_column: str | None = typer.Option(None, help="Text column (default: text)."),
    label_column: str | None = typer.Option(None, help="Label column (default: label, or the only other column)."),
    vector_column: str | None = typer.Option(None, help="Column holding a vector per row."),
    pair_columns: str | None = typer.Option(None, help="Two text columns 'a,b' holding pairs (for --method clip; sentence1,sentence2 is found by itself)."),
    model: str | None = typer.Option(None, help="Base text model: a sentence-transformers folder (default: all-MiniLM-L6-v2)."),
    mode: str | None = typer.Option(None, help="adapter (frozen base + residual net) or finetune (train the encoder)."),
    method: str | None = typer.Option(None, help="With labels: supcon, hscl, triplet, contrastive_pair, logistic_pair, npair or ce. Without: simclr, dcl, hcl, moco, byol, swav, barlow_twins, vicreg, simcse (text). Pairs: clip."),
    epochs: int | None = typer.Option(None, help="Epochs (default: from the data size)."),
    batch_size: int | None = typer.Option(None, help="Rows per batch (default: from the mode)."),
    seed: int | None = typer.Option(None, help="One seed for Python, NumPy and torch (default 0)."),
    config: Path | None = typer.Option(None, "--config", help="YAML file whose keys mirror these flags."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its latest checkpoint."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing run in --out."),
    quiet: bool | None = typer.Option(None, "--quiet", help="No progress bars."),
    device: str | None = typer.Option(None, help="auto, cpu, cuda or cuda:N."),
    lr: float | None = typer.Option(None, help="Learning rate (AdamW) of the encoder and the head alike; unset, the plan gives each its own (finetuning text: 3e-5 and 1e-3)."),
    weight_decay: float | None = typer.Option(None, help="AdamW weight decay."),
    warmup: float | None = typer.Option(None, help="Fraction of steps for the linear warm-up."),
    m_per_class: int | None = typer.Option(None, help="Rows per class in each batch."),
    val_fraction: float | None = typer.Option(None, help="Fraction of train held out for early stopping."),
    patience: int | None = typer.Option(None, help="Epochs without validation gain before stopping."),
    head_dim: int | None = typer.Option(None, help="Output size of the projection head."),
    projection_head: bool | None = typer.Option(None, "--projection-head/--no-projection-head", help="Force the head on or off."),
    architecture: str | None = typer.Option(None, help="Image encoder: cnn or resnet18."),
    max_seq_length: int | None = typer.Option(None, help="Token limit per text."),
    temperature: float | None = typer.Option(None, help="Loss temperature."),
    hardness: float | None = typer.Option(None, help="supcon: tilt towards hard negatives (unset: 1 for the adapter when classes average >= 100 rows, else 0)."),
    beta: float | None = typer.Option(None, help="hscl/hcl: hard-negative concentration."),
    num_negatives: int | None = typer.Option(None, help="hscl: Q (default n - 2)."),
    margin: float | None = typer.Option(None, help="triplet margin."),
    mining: str | None = typer.Option(None, help="triplet mining: batch_hard, semi_hard or all."),
    bias: float | None = typer.Option(None, help="logistic_pair bias."),
    pos_margin: float | None = typer.Option(None, help="contrastive_pair positive margin."),
    neg_margin: float | None = typer.Option(None, help="contrastive_pair negative margin."),
    l2_reg: float | None = typer.Option(None, help="npair L2 regularisation."),
    tau_plus: float | None = typer.Option(None, help="dcl/hcl: class prior tau+ in [0, 1)."),
    lambd: float | None = typer.Option(None, help="barlow_twins: weight of the off-diagonal term."),
    sim_coeff: float | None = typer.Option(None, help="vicreg: invariance weight."),
    std_coeff: float | None = typer.Option(None, help="vicreg: variance weight."),
    cov_coeff: float | None = typer.Option(None, help="vicreg: covariance weight."),
    epsilon: float | None = typer.Option(None, help="swav: Sinkhorn entropy eps."),
    sinkhorn_iterations: int | None = typer.Option(None, help="swav: Sinkhorn iterations."),
    queue_size: int | None = typer.Option(None, help="moco: keys in the memory queue (default 4096, or half the rows when fewer)."),
    momentum: float | None = typer.Option(None, help="moco/byol: base momentum of the EMA target, rising to 1 on a cosine (default 0.99)."),
    num_prototypes: int | None = typer.Option(None, help="swav: number of prototypes (default 128)."),
    local_crops: int | None = typer.Option(None, help="swav on images: small multi-crop views besides the two global ones (default 4; 0: none)."),
    freeze_prototypes: int | None = typer.Option(None, help="swav: steps before the prototypes train (default 5 % of the steps, at most 313)."),
    text_augment: str | None = typer.Option(None, help="Self-supervised text views in --mode finetune: dropout (SimCSE, default), delete, swap or mask."),
    views: int | None = typer.Option(None, help="Supervised contrastive methods on images: augmented views of each row in a batch, 1 or 2 (default 1; SupCon's paper used 2)."),
    no_report: bool = typer.Option(False, "--no-report", help="Skip report.html."),
) -> None:
    """Refine embeddings on TRAIN and write model, embeddings, metrics.json and report.html."""
    values = {k: v for k, v in locals().items() if k not in {
        "train", "out_dir", "test", "text_column", "label_column", "vector_column", "config",
        "resume", "overwrite", "no_report", "pair_columns"}}
    from contrastkit.workflow import ReadOptions
    from contrastkit.workflow import refine as run_refine

    options = _options(values, config)
    result = run_refine(
        train, out_dir, test=test,
        read=ReadOptions(text_column, label_column, vector_column, _pair_columns(pair_columns)),
        options=options, resume=resume, overwrite=overwrite, report=not no_report,
    )
    _print_result(result)
# fmt: on


def _pair_columns(value: str | None) -> tuple[str, str] | None:
    """'a,b' -> ("a", "b"); anything but two non-empty names is a UserError."""
    if value is None:
        return None
    names = [part.strip() for part in value.split(",")]
    if len(names) != 2 or not all(names):
        raise UserError(
            f"--pair-columns takes two column names separated by a comma (a,b), got {value!r}"
        )
    return names[0], names[1]


def _print_result(result) -> None:
    if not result.writer:  # a torchrun rank > 0: rank 0 reports
        return
    if result.after:
        print_metrics(result.before, result.after, f"before vs after, on {result.evaluated_on}")
    for note in result.notes:
        out.print(f"note: {note}")
    out.print(f"run folder: {result.run_dir}  ({result.timing['total_s']:.1f} s)")
    report = result.run_dir / "report.html"
    if report.exists():
        out.print(f"report: {report.resolve()}")


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
) -> None:
    """Embed rows with a refined model."""
    from contrastkit.data import read_dataset
    from contrastkit.embeddings_io import write_embeddings
    from contrastkit.refiner import Refiner

    refiner = Refiner.load(model)
    data = read_dataset(input_path, text_column=text_column, vector_column=vector_column)
    Z = refiner.base_transform(data.inputs) if base else refiner.transform(data.inputs)
    write_embeddings(out_path, Z, data.labels)
    out.print(f"wrote {Z.shape[0]} embeddings of dimension {Z.shape[1]} to {out_path}")


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
    from contrastkit.data import encode_labels
    from contrastkit.embeddings_io import read_run_embeddings
    from contrastkit.evaluation import evaluate as compute
    from contrastkit.training.atomic import write_json_atomic
    from contrastkit.workflow import ReadOptions, _json_safe, read_train_test

    if (model is None) == (embeddings is None):
        raise UserError("give exactly one of --model (with --train and --test) or --embeddings")
    if embeddings is not None:
        Z_train, y_train, Z_test, y_test = read_run_embeddings(embeddings)
    else:
        if train is None or test is None:
            raise UserError("--model needs labelled --train and --test data")
        from contrastkit.refiner import Refiner

        refiner = Refiner.load(model)
        train_ds, test_ds = read_train_test(train, test, ReadOptions(text_column, label_column))
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
        write_json_atomic(out_path, _json_safe(metrics))


@app.command()
@user_errors
def demo(
    out_dir: Path = typer.Option(
        Path("demo_run"), "--out", help="Folder for the demo's data and run."
    ),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
) -> None:
    """Refine scikit-learn's handwritten digits (shipped with scikit-learn) and show before/after."""
    from contrastkit.demo import run_demo

    _print_result(run_demo(out_dir, quiet=quiet))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
