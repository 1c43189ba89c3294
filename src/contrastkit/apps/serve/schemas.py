"""The request bodies (pydantic; unknown fields are refused, as OpenAI does) and the response
shapes shown in the OpenAPI docs at /docs."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Inputs = str | list[str] | list[list[float]]
Scalar = str | int | float | bool
INPUT_HELP = (
    "A text or a list of texts; for a model of vectors (an adapter over vectors), a list of "
    "vectors (lists of numbers)."
)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _shape(value):
    """Refuse, in one sentence, what is neither texts nor vectors (before pydantic's union
    would list every way it failed)."""
    if isinstance(value, str):
        return value
    if not isinstance(value, list):
        raise ValueError("must be a string, a list of strings or a list of vectors")
    if all(isinstance(v, str) for v in value):
        return value
    numbers = (int, float)
    if all(
        isinstance(v, list) and all(isinstance(x, numbers) and not isinstance(x, bool) for x in v)
        for v in value
    ):
        return value
    raise ValueError(
        "must be a string, a list of strings or a list of vectors (lists of numbers), not a mix"
    )


class EmbeddingRequest(Strict):
    """OpenAI's embeddings request."""

    input: Inputs = Field(description=INPUT_HELP)
    model: str | None = Field(None, description="Accepted and ignored: the server has one model.")
    encoding_format: Literal["float", "base64"] = Field(
        "float", description="base64: the little-endian float32 bytes of each vector."
    )
    dimensions: int | None = Field(
        None, ge=1, description="Keep the first dimensions and scale to unit length again."
    )
    user: str | None = Field(None, description="Accepted and ignored, as OpenAI's.")

    _input = field_validator("input", mode="before")(_shape)


class Embedding(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class Usage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: Usage


class SearchRequest(Strict):
    query: Inputs = Field(description=INPUT_HELP)
    k: int = Field(10, ge=1, description="Results per query.")
    where: dict[str, Scalar | list[Scalar]] | None = Field(
        None, description="Only rows whose metadata equal these values (a list: any of them)."
    )

    _query = field_validator("query", mode="before")(_shape)


class Hit(BaseModel):
    id: str | int
    score: float
    text: str | None = None
    metadata: dict


class QueryHits(BaseModel):
    index: int
    hits: list[Hit]


class SearchResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[QueryHits]
    model: str


class DuplicatesRequest(Strict):
    input: Inputs = Field(description=INPUT_HELP)
    threshold: float | None = Field(
        None, ge=-1, le=1, description="Cosine at or above which a row is a duplicate "
        "(default: the server's, given or calibrated at start).",
    )  # fmt: skip
    k: int = Field(10, ge=1, description="At most this many matches per input.")

    _input = field_validator("input", mode="before")(_shape)


class DuplicateMatches(BaseModel):
    index: int
    duplicate: bool
    matches: list[Hit]


class DuplicatesResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[DuplicateMatches]
    threshold: float
    threshold_source: str


class AddRequest(Strict):
    input: Inputs = Field(description=INPUT_HELP)
    ids: list[str] | list[int] | None = Field(
        None, description="New ids (default: integers after the largest)."
    )
    metadata: dict[str, list[Scalar | None]] | None = Field(
        None, description="Columns of metadata, one value per row."
    )

    _input = field_validator("input", mode="before")(_shape)


class AddResponse(BaseModel):
    added: int
    ids: list[str | int]
    rows: int


class DeleteResponse(BaseModel):
    deleted: str | int
    rows: int


class RecommendRequest(Strict):
    users: list[str | int] | None = Field(None, description="User ids to recommend for.")
    history: list[str | int] | None = Field(
        None, description="Or: the items a new user has interacted with."
    )
    k: int = Field(10, ge=1)
    exclude_seen: bool = Field(True, description="Leave out the items a user has seen.")


class SimilarItemsRequest(Strict):
    items: list[str | int] = Field(description="Item ids.")
    k: int = Field(10, ge=1)


class RecommendedItem(BaseModel):
    id: str
    title: str | None = None
    score: float


class Recommendation(BaseModel):
    query: str | None
    items: list[RecommendedItem]
    note: str | None = None
    ignored: list[str] = []


class RecommendResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[Recommendation]
