"""`POST /v1/embeddings` (OpenAI's request and response) and `GET /v1/models`."""

from __future__ import annotations

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from contrastkit.apps.serve.batcher import QueueFull
from contrastkit.apps.serve.errors import ApiError
from contrastkit.apps.serve.inputs import encoded, parse_inputs, token_count, truncated
from contrastkit.apps.serve.schemas import EmbeddingRequest, EmbeddingResponse
from contrastkit.apps.serve.service import Service

router = APIRouter()


def service_of(request: Request) -> Service:
    return request.app.state.service


async def embed(service: Service, value, field: str = "input") -> tuple[object, np.ndarray]:
    """(inputs, embeddings) of a request's `field`, through the batcher; 429 when its queue
    is full."""
    service.ready()
    inputs = parse_inputs(
        value, service.embedder.kind, service.options.limits, service.input_dim, field
    )
    try:
        return inputs, await service.batcher.embed(inputs)
    except QueueFull:
        limit = service.options.batching.max_queue
        raise ApiError(
            429, f"the server is busy: {service.batcher.depth} inputs are waiting, the queue "
            f"holds {limit} (--max-queue); retry in a moment", code="queue_full",
            headers={"Retry-After": "1"},
        ) from None  # fmt: skip


@router.post("/v1/embeddings", response_model=EmbeddingResponse, tags=["embeddings"])
async def embeddings(body: EmbeddingRequest, request: Request) -> JSONResponse:
    """Embed texts (or, for a model of vectors, refine vectors): OpenAI's embeddings API."""
    service = service_of(request)
    service.ready()
    dim = service.embedder.dim
    if body.dimensions is not None and dim is not None and body.dimensions > dim:
        raise ApiError(
            422, f"dimensions {body.dimensions} is more than the model's {dim}", param="dimensions"
        )
    inputs, Z = await embed(service, body.input)
    Z = truncated(Z, body.dimensions)
    data = [
        {"object": "embedding", "index": i, "embedding": encoded(row, body.encoding_format)}
        for i, row in enumerate(Z)
    ]
    tokens = token_count(inputs, service.embedder.count_tokens)
    return JSONResponse({
        "object": "list", "data": data, "model": service.model_name,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    })  # fmt: skip


@router.get("/v1/models", tags=["embeddings"])
async def models(request: Request) -> dict:
    """The one model this server embeds with (OpenAI's model list)."""
    service = service_of(request)
    service.ready()
    entry = {"id": service.model_name, "object": "model", "created": 0, "owned_by": "contrastkit"}
    return {"object": "list", "data": [entry]}
