"""Marker-delimited sections of BENCHMARKS.md: every benchmark script rewrites its own part
between `<!-- name:begin -->` and `<!-- name:end -->` and leaves the rest of the file alone."""

from __future__ import annotations

from pathlib import Path

NEW_DOCUMENT = "# contrastkit benchmarks\n"


def replace_section(document: str, begin: str, end: str, body: str, *, top: bool = False) -> str:
    """`document` with the text between `begin` and `end` replaced by `body` (markers kept).
    Absent markers: the section goes after the first line (`top`) or at the end. Everything
    outside the markers is left as it was."""
    block = f"{begin}\n{body.strip(chr(10))}\n{end}"
    if begin in document and end in document.split(begin, 1)[1]:
        head, rest = document.split(begin, 1)
        return head + block + rest.split(end, 1)[1]
    if top:
        first, _, rest = document.partition("\n")
        return f"{first}\n\n{block}\n\n{rest.lstrip(chr(10))}"
    return document.rstrip("\n") + "\n\n" + block + "\n"


def read_document(out: Path) -> str:
    """The text of `out`, or a new benchmarks document when the file does not exist yet."""
    return out.read_text() if out.exists() else NEW_DOCUMENT


def write_section(out: Path, section: str, begin: str, end: str, *, top: bool = False) -> None:
    """Write `section` (a text that may start with `begin` and end with `end`) between those
    markers in the file `out`, creating the file when it does not exist."""
    body = section.strip("\n").removeprefix(begin).removesuffix(end)
    out.write_text(replace_section(read_document(out), begin, end, body, top=top))
