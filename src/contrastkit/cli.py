"""The `contrastkit` command line."""

import typer

from contrastkit import __version__

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Refine embeddings with contrastive learning.")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"contrastkit {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version and exit."),
) -> None:
    """Refine embeddings with contrastive learning."""
