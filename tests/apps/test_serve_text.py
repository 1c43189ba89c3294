"""The service with the shipped all-MiniLM-L6-v2: the official `openai` client works against
it by changing the base URL, texts in any script embed as the model embeds them (checked
against the embedder loaded separately, through its on-disk cache), and search, duplicates
and additions work with texts."""

from __future__ import annotations

from types import SimpleNamespace

import httpx
import numpy as np
import pytest
from serve_helpers import ThreadServer, error_of, wait_until

from contrastkit.apps.search import SearchIndex
from contrastkit.apps.serve import Limits, ServeOptions, create_app

TEXTS = [
    "My card hasn't arrived yet.",
    "How do I reset my PIN?",
    "Can I get a refund for this purchase?",
    "The exchange rate looks wrong.",
]
UNICODE = [
    "Où est ma carte ? 🙂",
    "私のカードはまだ届いていません",
    "بطاقتي لم تصل بعد",
    "e\u0301te\u0301 ☃",
]


@pytest.fixture(scope="module")
def served(minilm, tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve_text")
    SearchIndex.build(
        TEXTS, embedder=minilm, metadata={"topic": ["card", "pin", "refund", "fx"]}
    ).save(folder / "index")
    options = ServeOptions(
        index=folder / "index", allow_unauthenticated_writes=True, limits=Limits(max_chars=100)
    )
    with (
        ThreadServer(create_app(options)) as server,
        httpx.Client(base_url=server.url, timeout=60) as client,
    ):
        wait_until(lambda: client.get("/health").status_code == 200, timeout=120)
        yield SimpleNamespace(client=client, url=server.url, folder=folder, minilm=minilm)


def test_the_openai_client_works_by_changing_the_base_url(served):
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=f"{served.url}/v1", api_key="not-needed", max_retries=0)
    expected = served.minilm.encode(TEXTS[:2])
    # Without encoding_format the client asks for base64 and decodes it itself.
    for extra in ({}, {"encoding_format": "float"}):
        answer = client.embeddings.create(model="all-MiniLM-L6-v2", input=TEXTS[:2], **extra)
        assert answer.object == "list" and answer.model == "all-MiniLM-L6-v2"
        assert [d.index for d in answer.data] == [0, 1]
        got = np.array([d.embedding for d in answer.data], dtype=np.float32)
        np.testing.assert_allclose(got, expected, atol=1e-5)
        assert answer.usage.prompt_tokens == answer.usage.total_tokens > 0
    single = client.embeddings.create(model="m", input=TEXTS[0], dimensions=64)
    short = expected[0, :64] / np.linalg.norm(expected[0, :64])
    np.testing.assert_allclose(single.data[0].embedding, short, atol=1e-5)
    with pytest.raises(openai.UnprocessableEntityError, match="embeds texts"):
        client.embeddings.create(model="m", input=[[1, 2, 3]])  # token arrays are not taken


def test_usage_counts_the_tokens_the_model_reads(served):
    from transformers import AutoTokenizer

    from contrastkit.models.text import default_text_model_path

    tokenizer = AutoTokenizer.from_pretrained(default_text_model_path())
    texts = [*TEXTS, *UNICODE]
    expected = sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts)
    response = served.client.post("/v1/embeddings", json={"input": texts})
    assert response.status_code == 200, response.text
    assert response.json()["usage"] == {"prompt_tokens": expected, "total_tokens": expected}
    assert expected != sum(len(t.split()) for t in texts)  # tokens, not words


def test_texts_in_any_script(served):
    response = served.client.post("/v1/embeddings", json={"input": UNICODE})
    assert response.status_code == 200, response.text
    got = np.array([d["embedding"] for d in response.json()["data"]], dtype=np.float32)
    np.testing.assert_allclose(got, served.minilm.encode(UNICODE), atol=1e-5)


def test_characters_are_counted_not_bytes(served):
    assert served.client.post("/v1/embeddings", json={"input": "é" * 100}).status_code == 200
    error = error_of(served.client.post("/v1/embeddings", json={"input": ["ok", "é" * 101]}), 413)
    assert error["code"] == "max_chars" and "input[1]" in error["message"]
    assert "--max-chars" in error["message"]


@pytest.mark.parametrize("text", ["", "   \n\t"])
def test_empty_texts_are_refused(served, text):
    error = error_of(served.client.post("/v1/embeddings", json={"input": ["fine", text]}), 422)
    assert "input[1] is empty" in error["message"]


def test_search_duplicates_and_add_with_texts(served):
    query = "my card still has not arrived"
    body = served.client.post("/search", json={"query": query, "k": 2}).json()
    expected = SearchIndex.load(served.folder / "index", embedder=served.minilm).search(
        [query], k=2
    )[0]
    assert [h["id"] for h in body["data"][0]["hits"]] == [h.id for h in expected]
    assert body["data"][0]["hits"][0]["text"] == TEXTS[0]
    dup = served.client.post(
        "/duplicates", json={"input": [TEXTS[1], "What a sunny day at the beach"]}
    ).json()
    assert [d["duplicate"] for d in dup["data"]] == [True, False]
    assert dup["data"][0]["matches"][0]["text"] == TEXTS[1]
    added = served.client.post(
        "/index/add", json={"input": ["Où est ma carte ?"], "metadata": {"topic": ["card"]}}
    )
    assert added.json()["ids"] == [4]
    on_disk = SearchIndex.load(served.folder / "index", embedder=served.minilm)
    assert on_disk.rows.frame["text"].tolist()[-1] == "Où est ma carte ?"
    assert served.client.delete("/index/4").json() == {"deleted": 4, "rows": 4}
