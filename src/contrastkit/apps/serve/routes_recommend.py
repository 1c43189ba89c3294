"""`POST /recommend` and `POST /similar-items` with the recommender given by --recommender."""

from __future__ import annotations

import asyncio
import threading

from fastapi import APIRouter, Request

from contrastkit.apps.serve.errors import ApiError
from contrastkit.apps.serve.routes_embed import service_of
from contrastkit.apps.serve.routes_index import check_k
from contrastkit.apps.serve.schemas import RecommendRequest, RecommendResponse, SimilarItemsRequest

router = APIRouter(tags=["recommend"])
_lock = threading.Lock()  # the recommender caches its item vectors on first use


def answer_json(answer) -> dict:
    items = [
        {"id": i, "title": None if t is None else str(t), "score": s}
        for i, t, s in zip(answer.items, answer.titles, answer.scores, strict=True)
    ]
    return {"query": answer.query, "items": items, "note": answer.note, "ignored": answer.ignored}


def check_ids(ids: list, field: str, limit: int) -> list[str]:
    if not ids:
        raise ApiError(422, f"{field} is empty; send at least one id", param=field)
    if len(ids) > limit:
        raise ApiError(
            413, f"{field} holds {len(ids)} ids, more than the limit of {limit} per request "
            "(--max-inputs)", param=field, code="max_inputs",
        )  # fmt: skip
    return [str(i) for i in ids]


async def locked(function, *args):
    def run():
        with _lock:
            return function(*args)

    return await asyncio.to_thread(run)


@router.post("/recommend", response_model=RecommendResponse)
async def recommend(body: RecommendRequest, request: Request) -> dict:
    """The k best items for each user (a cold user: the most popular, said in `note`), or
    for a new user given by the items of their `history`."""
    service = service_of(request)
    recommender = service.need_recommender("/recommend")
    limits = service.options.limits
    check_k(body.k, limits.max_k)
    if (body.users is None) == (body.history is None):
        raise ApiError(422, "send users (ids) or history (item ids), one of the two")
    if body.users is not None:
        users = check_ids(body.users, "users", limits.max_inputs)
        answers = await locked(recommender.recommend, users, body.k, body.exclude_seen)
    else:
        history = check_ids(body.history, "history", limits.max_inputs)
        answers = [await locked(recommender.recommend_for_history, history, body.k)]
    return {"object": "list", "data": [answer_json(a) for a in answers]}


@router.post("/similar-items", response_model=RecommendResponse)
async def similar_items(body: SimilarItemsRequest, request: Request) -> dict:
    """The k items closest to each given item."""
    service = service_of(request)
    recommender = service.need_recommender("/similar-items")
    limits = service.options.limits
    check_k(body.k, limits.max_k)
    items = check_ids(body.items, "items", limits.max_inputs)
    answers = await locked(recommender.similar_items, items, body.k)
    return {"object": "list", "data": [answer_json(a) for a in answers]}
