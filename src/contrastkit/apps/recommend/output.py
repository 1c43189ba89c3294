"""Many users' recommendations to one file (CSV, JSON Lines or Parquet), written in chunks of
users and renamed into place only when complete."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from contrastkit.apps.recommend.data import id_strings, read_table
from contrastkit.errors import DataError
from contrastkit.io.atomic import atomic_file

USERS_PER_CHUNK = 2000


def read_user_ids(path: Path) -> list[str]:
    """User ids from a table with a `user` column, or a plain file of one id per line."""
    if path.suffix.lower() in (".csv", ".tsv", ".jsonl", ".json", ".parquet"):
        table = read_table(path, "users")
        return [str(u) for u in id_strings(table, "user", "user column")]
    if not path.is_file():
        raise DataError(f"the users file {path} does not exist; check the path")
    users = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    users = [u for u in users if u]
    if not users:
        raise DataError(f"the users file {path} holds no user ids; write one per line")
    return users


def _rows(answers) -> list[dict]:
    return [
        {
            "user": a.query,
            "rank": r,
            "item": item,
            "title": title,
            "score": score,
            "note": a.note or "",
        }  # fmt: skip
        for a in answers
        for r, (item, title, score) in enumerate(zip(a.items, a.titles, a.scores, strict=True), 1)
    ]


def write_recommendations(rec, users: list[str], k: int, exclude_seen: bool, path: Path) -> int:
    """Write the top k of every user to `path`; returns the number of rows (user, item) written."""
    import pandas as pd

    suffix = path.suffix.lower()
    frames, count = [], 0
    with atomic_file(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as stream:
            for start in range(0, len(users), USERS_PER_CHUNK):
                answers = rec.recommend(users[start : start + USERS_PER_CHUNK], k, exclude_seen)
                rows = _rows(answers)
                count += len(rows)
                if suffix == ".jsonl":
                    for a in answers:
                        record = {"user": a.query, "items": a.items, "scores": a.scores}
                        stream.write(json.dumps({**record, "note": a.note}) + "\n")
                elif suffix == ".csv":
                    pd.DataFrame(rows).to_csv(stream, header=start == 0, index=False)
                else:
                    frames.append(pd.DataFrame(rows))
        if suffix == ".parquet":
            frame = pd.concat(frames) if frames else pd.DataFrame()
            frame["score"] = frame["score"].astype(np.float64)
            frame.to_parquet(tmp, index=False)
    return count
