"""`contrastkit refine` and `contrastkit demo`. The option flags of refine are made from
`contrastkit.config.options.OPTIONS`: one flag per option, its help and bounds from there."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import typer

from contrastkit.cli import app, print_result, user_errors
from contrastkit.config.options import OPTIONS, Option
from contrastkit.errors import UserError

# The flags that are not options of the refinement itself: the files and the run folder.
# fmt: off
_FILE_FLAGS: list[tuple[str, Any, Any]] = [
    ("train", str, typer.Option(..., "--train", help="Training data: CSV/TSV/JSONL/Parquet/NPY/NPZ or an image folder.")),
    ("out_dir", Path, typer.Option(..., "--out", help="Run folder for model, embeddings, metrics and report.")),
    ("test", str | None, typer.Option(None, "--test", help="Test data for the before/after metrics (else 10 % of train is held out).")),
    ("unlabelled", str | None, typer.Option(None, "--unlabelled", help="Rows without labels, of the kind of --train (any label column in it is ignored), trained beside the labelled rows: pseudo-labels, and a self-supervised stage with --unlabelled-method.")),
    ("text_column", str | None, typer.Option(None, help="Text column (default: text).")),
    ("label_column", str | None, typer.Option(None, help="Label column (default: label, or the only other column).")),
    ("vector_column", str | None, typer.Option(None, help="Column holding a vector per row.")),
    ("pair_columns", str | None, typer.Option(None, help="Two text columns 'a,b' holding pairs (for --method clip; sentence1,sentence2 is found by itself).")),
    ("config", Path | None, typer.Option(None, "--config", help="YAML file whose keys mirror these flags.")),
    ("resume", bool, typer.Option(False, "--resume", help="Continue the run in --out from its latest checkpoint.")),
    ("overwrite", bool, typer.Option(False, "--overwrite", help="Replace an existing run in --out (the old run stays until the new one is complete).")),
    ("no_report", bool, typer.Option(False, "--no-report", help="Skip report.html.")),
    ("no_check", bool, typer.Option(False, "--no-check", help="With --test: skip the check (10 % of the training rows held out of a first fit, to see that refinement did not make things worse) and train once on every row. Without it, adapter mode then trains again on every row; finetune mode keeps the rows out.")),
]
# fmt: on


def _flag(option: Option) -> inspect.Parameter:
    """The typer parameter of an option: unset (None) unless the user gives the flag."""
    declaration = option.flag
    if option.type is bool:
        declaration = f"{option.flag}/--no-{option.flag[2:]}"
    text = option.help
    if option.default is not None and "default" not in text:
        text = f"{text} (default: {option.default})"
    return inspect.Parameter(
        option.name,
        inspect.Parameter.KEYWORD_ONLY,
        default=typer.Option(None, declaration, help=text),
        annotation=option.type | None,
    )


def _with_flags(function):
    """`function(**values)` with a signature typer reads: the file flags, then every option."""
    parameters = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=info, annotation=kind)
        for name, kind, info in _FILE_FLAGS
    ] + [_flag(option) for option in OPTIONS]
    function.__signature__ = inspect.Signature(parameters)
    function.__annotations__ = {p.name: p.annotation for p in parameters}
    return function


@app.command()
@user_errors
@_with_flags
def refine(**values: Any) -> None:
    """Refine embeddings on TRAIN and write model, embeddings, metrics.json and report.html."""
    from contrastkit.run import ReadOptions, refine_run

    files = {name: values.pop(name) for name, _, _ in _FILE_FLAGS}
    options = command_options(values, files["config"])
    read = ReadOptions(
        files["text_column"],
        files["label_column"],
        files["vector_column"],
        pair_columns(files["pair_columns"]),
    )
    result = refine_run(
        files["train"],
        files["out_dir"],
        test=files["test"],
        unlabelled=files["unlabelled"],
        read=read,
        options=options,
        resume=files["resume"],
        overwrite=files["overwrite"],
        report=not files["no_report"],
        check=not files["no_check"],
    )
    print_result(result)


def command_options(values: dict, config_file: Path | None) -> dict:
    """Flags the user gave, over the config file's keys (the defaults fill the rest)."""
    from contrastkit.config.refine_config import load_config_file

    merged = load_config_file(config_file) if config_file else {}
    merged.update({k: v for k, v in values.items() if v is not None})
    return merged


def pair_columns(value: str | None) -> tuple[str, str] | None:
    """'a,b' -> ("a", "b"); anything but two non-empty names is a UserError."""
    if value is None:
        return None
    names = [part.strip() for part in value.split(",")]
    if len(names) != 2 or not all(names):
        raise UserError(
            f"--pair-columns takes two column names separated by a comma (a,b), got {value!r}"
        )
    return names[0], names[1]


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

    print_result(run_demo(out_dir, quiet=quiet))
