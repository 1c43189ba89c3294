"""`contrastkit serve`: the HTTP service (the app itself lives in `contrastkit.apps.serve`)."""

from __future__ import annotations

from pathlib import Path

import typer

from contrastkit.apps.serve.options import (
    MAX_BATCH_SIZE,
    MAX_BODY_BYTES,
    MAX_CHARS,
    MAX_INPUTS,
    MAX_QUEUE,
    MAX_WAIT_MS,
)
from contrastkit.cli import app, out, user_errors
from contrastkit.errors import UserError


# fmt: off
@app.command("serve")
@user_errors
def serve_command(
    model: str | None = typer.Option(None, "--model", help="A refined model folder (run/model), a sentence-transformers folder, or unset: the index's model with --index, else the shipped all-MiniLM-L6-v2."),
    index: Path | None = typer.Option(None, "--index", help="An index folder (contrastkit index): enables /search, /duplicates, /index/add, DELETE /index/{id}."),
    recommender: Path | None = typer.Option(None, "--recommender", help="A recommender model folder (contrastkit recommend fit: RUN/model): enables /recommend and /similar-items."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0: every interface; an explicit choice)."),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="Port (0: any free one)."),
    api_key_file: Path | None = typer.Option(None, "--api-key-file", help="A file holding the API key: every endpoint but /health then needs 'Authorization: Bearer <key>'."),
    allow_unauthenticated_writes: bool = typer.Option(False, "--allow-unauthenticated-writes", help="Without --api-key-file, let anyone change the index (/index/*)."),
    threshold: float | None = typer.Option(None, "--threshold", min=-1.0, max=1.0, help="Cosine at or above which /duplicates calls a row a duplicate (default 0.9, chosen for the shipped model)."),
    calibrate: str | None = typer.Option(None, "--calibrate", help="Labelled pairs (sentence1,sentence2,label) to choose the /duplicates threshold on (F1-best)."),
    max_batch_size: int = typer.Option(MAX_BATCH_SIZE, "--max-batch-size", help="Most inputs per encoder call."),
    max_wait_ms: float = typer.Option(MAX_WAIT_MS, "--max-wait-ms", help="Longest a request waits for others to share its encoder call."),
    workers: int | None = typer.Option(None, "--workers", help="Encoder threads, a batch each [default: one per CPU core, up to 4; 1 on a GPU]."),
    max_queue: int = typer.Option(MAX_QUEUE, "--max-queue", help="Inputs that may wait for the encoder; beyond, requests get 429."),
    max_inputs: int = typer.Option(MAX_INPUTS, "--max-inputs", help="Most inputs (texts, vectors, ids) per request (413 beyond)."),
    max_chars: int = typer.Option(MAX_CHARS, "--max-chars", help="Most characters per text (413 beyond)."),
    max_body_bytes: int = typer.Option(MAX_BODY_BYTES, "--max-body-bytes", help="Largest request body (413 beyond)."),
    quiet: bool = typer.Option(False, "--quiet", help="No line per request."),
) -> None:
    """Serve embeddings (OpenAI-compatible), search, duplicate checks and recommendations over HTTP."""
    from contrastkit.apps.serve import Batching, Limits, ServeOptions

    try:
        from contrastkit.apps.serve.server import run_server
    except ImportError as exc:
        raise UserError(
            f"contrastkit serve needs the serve extra ({exc.name} is missing): "
            "pip install 'contrastkit[serve]'"
        ) from None

    calibration = None
    if calibrate is not None:
        from contrastkit.cli.dedup import read_labelled_pairs

        if threshold is not None:
            raise UserError("give --threshold or --calibrate, not both")
        calibration = read_labelled_pairs(calibrate, None, None)
    if (threshold is not None or calibration is not None) and index is None:
        raise UserError("--threshold and --calibrate are for /duplicates, which needs --index")
    options = ServeOptions(
        model=model, index=index, recommender=recommender, threshold=threshold,
        calibration=calibration, api_key=read_key(api_key_file),
        allow_unauthenticated_writes=allow_unauthenticated_writes,
        limits=Limits(max_inputs=max_inputs, max_chars=max_chars, max_body_bytes=max_body_bytes),
        batching=Batching(max_batch_size=max_batch_size, max_wait_ms=max_wait_ms, max_queue=max_queue, workers=workers),
        quiet=quiet,
    )
    run_server(options, host, port, out=lambda line: out.print(line, highlight=False, soft_wrap=True, markup=False), key_file=api_key_file)
# fmt: on


def read_key(path: Path | None) -> str | None:
    """The API key in `path` (surrounding whitespace removed); never printed."""
    if path is None:
        return None
    try:
        key = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(
            f"--api-key-file {path} cannot be read ({exc.__class__.__name__})"
        ) from None
    if not key or len(key.split()) != 1:
        raise UserError(f"--api-key-file {path} must hold one key (one line, no spaces)")
    return key
