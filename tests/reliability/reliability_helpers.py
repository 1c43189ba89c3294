"""Helpers for the reliability tests: run `contrastkit refine` in-process, read its one-line
error, snapshot a folder to prove a refused command touched nothing, find the shared data."""

from __future__ import annotations

import hashlib
import re
import traceback
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from contrastkit.cli import app

SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str
    exception: BaseException | None

    @property
    def error_line(self) -> str:
        """The single `error: ...` line on stderr (asserts there is exactly one, and nothing
        that looks like a traceback)."""
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("error: ")]
        assert "Traceback" not in self.stderr, self.stderr
        assert len(errors) == 1, f"expected one error line, got:\n{self.stderr}"
        others = [line for line in lines if not line.startswith(("error: ", "warning: "))]
        assert not others, f"stderr holds more than the error line:\n{self.stderr}"
        return errors[0]


def run_refine(*args: str | Path) -> CliResult:
    """`contrastkit refine ARGS --quiet --no-report`, in this process."""
    result = CliRunner().invoke(app, ["refine", *map(str, args), "--quiet", "--no-report"])
    exception = result.exception
    if isinstance(exception, SystemExit):
        exception = None
    if exception is not None:  # an escaped exception is a bug: show where it came from
        print("".join(traceback.format_exception(exception)))
    return CliResult(result.exit_code, result.stdout, result.stderr, exception)


def assert_refused(result: CliResult, *fragments: str) -> str:
    """Exit code 2, one error line on stderr containing every fragment (case-insensitive,
    fragments may be regular expressions); returns the line."""
    assert result.exception is None, f"escaped exception: {result.exception!r}"
    assert result.exit_code == 2, (result.exit_code, result.stderr, result.stdout)
    line = result.error_line
    for fragment in fragments:
        assert re.search(fragment, line, re.IGNORECASE), f"{fragment!r} not in {line!r}"
    return line


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """{relative path: (sha256, mtime_ns)} of every file and folder under `folder`."""
    out = {}
    for path in sorted(folder.rglob("*")):
        stat = path.stat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
        out[str(path.relative_to(folder))] = (digest, stat.st_mtime_ns)
    return out


def shared_path(*parts: str) -> Path:
    """A file under ../shared/data, or skip the test with a clear message."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data file {path} is missing (see ../shared/data/README.md)")
    return path
