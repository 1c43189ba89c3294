"""A request's inputs checked against the model and the limits, in the form the encoder
takes: a list of texts, or a float32 array of vectors."""

from __future__ import annotations

import base64
from collections.abc import Callable

import numpy as np

from contrastkit.apps.serve.errors import ApiError
from contrastkit.apps.serve.options import Limits


def parse_inputs(
    value, kind: str, limits: Limits, dim: int | None, field: str = "input"
) -> list[str] | np.ndarray:
    """`value` (a text, texts or vectors) for a model of `kind` ("text" or "vectors", taking
    `dim` numbers when known): 422 for what the model cannot take, 413 beyond a limit."""
    items = [value] if isinstance(value, str) else value
    if len(items) == 0:
        raise ApiError(422, f"{field} is empty; send at least one input", param=field)
    if len(items) > limits.max_inputs:
        raise ApiError(
            413, f"{field} holds {len(items)} inputs, more than the limit of "
            f"{limits.max_inputs} per request (--max-inputs)", param=field, code="max_inputs",
        )  # fmt: skip
    texts = isinstance(items[0], str)
    if texts != (kind == "text"):
        wanted = "texts" if kind == "text" else "vectors (lists of numbers)"
        raise ApiError(422, f"{field}: this server's model embeds {wanted}", param=field)
    return _texts(items, limits, field) if texts else _vectors(items, dim, field)


def _texts(items: list[str], limits: Limits, field: str) -> list[str]:
    for i, text in enumerate(items):
        if not text.strip():
            raise ApiError(422, f"{field}[{i}] is empty; send some text", param=field)
        if len(text) > limits.max_chars:
            raise ApiError(
                413, f"{field}[{i}] has {len(text)} characters, more than the limit of "
                f"{limits.max_chars} (--max-chars)", param=field, code="max_chars",
            )  # fmt: skip
    return items


def _vectors(items: list[list[float]], dim: int | None, field: str) -> np.ndarray:
    lengths = {len(v) for v in items}
    if len(lengths) > 1:
        raise ApiError(422, f"{field}: the vectors have different lengths", param=field)
    X = np.asarray(items, dtype=np.float32)
    if dim is not None and X.shape[1] != dim:
        raise ApiError(
            422, f"{field}: the vectors have {X.shape[1]} numbers; the model takes {dim}",
            param=field,
        )  # fmt: skip
    if X.shape[1] == 0 or not np.isfinite(X).all():
        raise ApiError(422, f"{field}: vectors must hold finite numbers", param=field)
    zero = np.flatnonzero(np.abs(X).max(axis=1) == 0)
    if len(zero):
        raise ApiError(422, f"{field}[{zero[0]}] is all zeros; it has no direction", param=field)
    return X


def truncated(Z: np.ndarray, dimensions: int | None) -> np.ndarray:
    """The first `dimensions` of each row, scaled to unit length again (OpenAI's `dimensions`)."""
    if dimensions is None or dimensions == Z.shape[1]:
        return Z
    if dimensions > Z.shape[1]:
        raise ApiError(
            422, f"dimensions {dimensions} is more than the model's {Z.shape[1]}",
            param="dimensions",
        )  # fmt: skip
    part = Z[:, :dimensions]
    norms = np.linalg.norm(part, axis=1, keepdims=True)
    return (part / np.where(norms > 0, norms, 1)).astype(np.float32)


def encoded(row: np.ndarray, encoding_format: str) -> list[float] | str:
    """A vector as JSON numbers, or base64 of its little-endian float32 bytes."""
    if encoding_format == "base64":
        return base64.b64encode(row.astype("<f4").tobytes()).decode("ascii")
    return row.tolist()


def token_count(inputs, count_tokens: Callable[[list[str]], np.ndarray] | None) -> int:
    """`usage.prompt_tokens`: the tokens the model read in the texts (by its tokenizer), words
    (runs of non-space) for a text model without one, rows for vectors."""
    if isinstance(inputs, np.ndarray):
        return len(inputs)
    if count_tokens is not None:
        return int(np.sum(count_tokens(inputs)))
    return sum(len(text.split()) for text in inputs)
