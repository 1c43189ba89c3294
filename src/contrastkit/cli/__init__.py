"""The `contrastkit` command line: the app, its error boundary and shared printing; each
command lives in a module of its own (`refine`, `embed`, ...), registered at the bottom."""

from __future__ import annotations

import functools
import sys
import warnings
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from contrastkit import __version__
from contrastkit.errors import OptionError, UserError

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
    """Errors a user can cause: one sentence on stderr and exit code 2, never a traceback.
    An option's error names its flag (`--batch-size`), not its Python keyword."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        warnings.showwarning = _show_warning
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            fail(exc.render("cli") if isinstance(exc, OptionError) else str(exc))
        except KeyboardInterrupt:
            err.print(
                "interrupted; rerun the same command with --resume to continue from the last checkpoint"
            )
            raise typer.Exit(130) from None

    return wrapper


def fail(message: str) -> NoReturn:
    """Print `message` as one error line and exit with code 2."""
    line = " ".join(str(message).split())  # one line, whatever the message holds
    err.print(f"[red]error:[/red] {escape(line)}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


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


def print_result(result) -> None:
    """The console summary of a refine run: the metrics table, notes, where the outputs are."""
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


# The commands register themselves on `app` when imported.
from contrastkit.cli import embed, recommend, refine, search  # noqa: E402, F401

if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
