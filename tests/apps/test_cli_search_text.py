"""`contrastkit index`, `search` and `dedup` on texts with the shipped all-MiniLM-L6-v2: one
walk through the commands a user types (the model loads a few times: about 10 s)."""

from __future__ import annotations

import pandas as pd
from search_helpers import run_cli

TEXTS = [
    ("t1", "How do I reset my PIN?", "pin"), ("t2", "how do i reset my pin", "pin"),
    ("t3", "My card has not arrived yet", "card"), ("t4", "Where is my new card?", "card"),
    ("t5", "I was charged twice for one coffee", "charge"), ("t6", "What is the exchange rate?", "fx"),
]  # fmt: skip


def test_index_search_and_dedup_texts(tmp_path):
    pd.DataFrame(TEXTS, columns=["id", "text", "topic"]).to_csv(tmp_path / "t.csv", index=False)
    pd.DataFrame({
        "sentence1": ["reset my pin", "card not here", "reset my pin"],
        "sentence2": ["How can I reset the PIN?", "my card did not arrive", "what is the rate"],
        "label": [1, 1, 0],
    }).to_csv(tmp_path / "cal.csv", index=False)  # fmt: skip
    done = run_cli("index", "--input", tmp_path / "t.csv", "--out", tmp_path / "ix", "--quiet")
    assert done.exit_code == 0, done.stderr
    done = run_cli("search", "--index", tmp_path / "ix", "-q", "I forgot my PIN", "-k", "2")
    assert done.exit_code == 0, done.stderr
    assert "How do I reset my PIN?" in done.stdout and "topic" in done.stdout
    out = tmp_path / "hits.jsonl"
    done = run_cli("search", "--index", tmp_path / "ix", "-q", "I forgot my PIN", "-q",
                   "card missing", "--where", "topic=card", "-k", "5", "--out", out)  # fmt: skip
    assert done.exit_code == 0, done.stderr
    hits = pd.read_json(out, lines=True)
    assert set(hits["id"]) == {"t3", "t4"} and hits["query"].tolist()[2] == "card missing"
    groups = tmp_path / "groups.csv"
    done = run_cli("dedup", "--input", tmp_path / "t.csv", "--out", groups, "--calibrate",
                   tmp_path / "cal.csv", "--quiet")  # fmt: skip
    assert done.exit_code == 0, done.stderr
    assert "calibrated on 3 labelled pairs" in done.stdout
    table = pd.read_csv(groups)
    assert list(table.columns) == ["row", "id", "group", "group_size", "keep", "text"]
    assert table["group"].iloc[0] == table["group"].iloc[1]  # the two PIN questions
    assert table["keep"].tolist()[:2] == [True, False]
