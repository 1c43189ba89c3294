"""`POST /search`, `POST /duplicates`, `POST /index/add` and `DELETE /index/{id}` over the
index given with --index. Changes are saved at once: the index folder is replaced whole, in
one atomic step, before the answer is sent."""

from __future__ import annotations

from fastapi import APIRouter, Request

from contrastkit.apps.search import Hit
from contrastkit.apps.serve.errors import ApiError
from contrastkit.apps.serve.routes_embed import embed, service_of
from contrastkit.apps.serve.schemas import (
    AddRequest,
    AddResponse,
    DeleteResponse,
    DuplicatesRequest,
    DuplicatesResponse,
    SearchRequest,
    SearchResponse,
)
from contrastkit.io.atomic import json_safe

router = APIRouter(tags=["index"])


def check_k(k: int, limit: int) -> None:
    if k > limit:
        raise ApiError(
            413, f"k {k} is more than the limit of {limit} results per query", param="k",
            code="max_k",
        )  # fmt: skip


def hit_json(hit: Hit) -> dict:
    return {"id": hit.id, "score": hit.score, "text": hit.text, "metadata": json_safe(hit.metadata)}


@router.post("/search", response_model=SearchResponse)
async def search(body: SearchRequest, request: Request) -> dict:
    """The k rows of the index most similar to each query, most similar first."""
    service = service_of(request)
    service.need_index("/search")
    check_k(body.k, service.options.limits.max_k)
    _, Q = await embed(service, body.query, "query")
    results = await service.with_index(lambda index: index.search_embeddings(Q, body.k, body.where))
    data = [{"index": i, "hits": [hit_json(h) for h in hits]} for i, hits in enumerate(results)]
    return {"object": "list", "data": data, "model": service.model_name}


@router.post("/duplicates", response_model=DuplicatesResponse)
async def duplicates(body: DuplicatesRequest, request: Request) -> dict:
    """For each input, the rows of the index at or above the threshold (its near-duplicates)."""
    service = service_of(request)
    service.need_index("/duplicates")
    check_k(body.k, service.options.limits.max_k)
    threshold, source = service.threshold
    if body.threshold is not None:
        threshold, source = body.threshold, "given"
    _, Q = await embed(service, body.input)
    results = await service.with_index(lambda index: index.search_embeddings(Q, body.k))
    data = []
    for i, hits in enumerate(results):
        matches = [hit_json(h) for h in hits if h.score >= threshold]
        data.append({"index": i, "duplicate": bool(matches), "matches": matches})
    return {"object": "list", "data": data, "threshold": threshold, "threshold_source": source}


@router.post("/index/add", response_model=AddResponse)
async def add(body: AddRequest, request: Request) -> dict:
    """Embed rows and add them to the index; saved before the answer."""
    service = service_of(request)
    service.need_index("/index/add")
    inputs, Z = await embed(service, body.input)
    texts = inputs if isinstance(inputs, list) else None

    def add_rows(index) -> list:
        before = len(index)
        index.add_embeddings(Z, ids=body.ids, texts=texts, metadata=body.metadata)
        return index.rows.frame["id"].iloc[before:].tolist()

    new_ids = await service.change_index(add_rows)
    return {"added": len(new_ids), "ids": json_safe(new_ids), "rows": len(service.index)}


@router.delete("/index/{row_id:path}", response_model=DeleteResponse)
async def delete(row_id: str, request: Request) -> dict:
    """Remove the row with this id from the index; saved before the answer."""
    service = service_of(request)
    service.need_index("/index/{id}")

    def remove_row(index):
        ids = index.rows.frame["id"] if "id" in index.rows.frame else []
        wanted = typed_id(row_id, ids)
        if wanted not in set(ids):
            raise ApiError(404, f"the index has no row with the id {row_id!r}", param="id")
        index.remove([wanted])
        return wanted

    removed = await service.change_index(remove_row)
    return {"deleted": json_safe(removed), "rows": len(service.index)}


def typed_id(raw: str, ids) -> str | int:
    """The id as the index holds them: an integer when its ids are integers."""
    first = next(iter(ids), None)
    if isinstance(first, int) or hasattr(first, "dtype") and first.dtype.kind in "iu":
        try:
            return int(raw)
        except ValueError:
            return raw
    return raw
