"""The run folder of `contrastkit refine`: checked before anything is written, locked while a
run uses it, and never lost.

    RUN_DIR/
      config.yaml         every resolved option and a fingerprint of the data
      checkpoints/        one per epoch; `--resume` continues from the latest
      model/  embeddings.parquet  metrics.json  report.html

- One process at a time: an exclusive lock (`.RUN_DIR.lock` beside the folder, holding the
  owner's pid and host) is taken before anything is read or written; the operating system
  releases it when the process ends, so a lock left by a killed run is simply taken over.
- `--overwrite` builds the new run in `.RUN_DIR.new` beside the old one and swaps the two only
  when the new run is complete: a failed or killed `--overwrite` leaves the old run as it was.
- `--resume` continues only the run the folder holds: options that differ from the saved
  ones, or data whose fingerprint differs, are refused naming what differs.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

import yaml

from contrastkit.errors import ConfigError, UserError
from contrastkit.io.atomic import replace_folder, write_bytes_atomic

CONFIG = "config.yaml"
# What a run folder may hold; anything else in it means it is not (only) a run.
RUN_FILES = ("metrics.json", "report.html", "model", "embeddings.parquet", "checkpoints", CONFIG)


class RunFolderBusy(UserError):
    """Another process holds the run folder's lock."""


class RunLock:
    """An exclusive lock on a run folder: `flock` on `.NAME.lock` beside it, which the
    operating system releases when the owner exits, even when it is killed; so a lock file left
    behind is stale by construction and the next run simply takes it. The file says who holds
    it (pid and host) for the message a refused process prints."""

    def __init__(self, run: Path) -> None:
        self.path = run.parent / f".{run.name}.lock"
        try:
            run.parent.mkdir(parents=True, exist_ok=True)
            self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ConfigError(
                f"cannot write to the run folder {run} ({exc.strerror or exc}); choose a "
                "writable --out"
            ) from None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(self._fd, 200, 0).decode("utf-8", "replace").strip()
            self.release()
            raise RunFolderBusy(
                f"run folder {run} is in use by another contrastkit process "
                f"({owner or 'owner unknown'}); wait for it to finish or choose another --out"
            ) from None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"pid {os.getpid()} on host {socket.gethostname()}\n".encode(), 0)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None


@dataclass
class RunFolder:
    """Where a run writes (`work`: the folder itself, or the staging folder of an overwrite)
    and what it found there."""

    path: Path
    work: Path
    created: bool
    lock: RunLock | None = None

    @property
    def staged(self) -> bool:
        return self.work != self.path

    def saved_config(self) -> dict | None:
        """The config.yaml of the run this folder holds (None when there is none yet)."""
        return read_saved_config(self.work)

    def write_config(self, config: dict) -> None:
        """config.yaml, written only when it changes (a resumed run leaves it as it was)."""
        text = yaml.safe_dump(config, sort_keys=True).encode()
        path = self.work / CONFIG
        if not (path.is_file() and path.read_bytes() == text):
            write_bytes_atomic(path, text)

    def finish(self) -> None:
        """The run is complete: an overwrite's new run takes the place of the old one."""
        if self.staged:
            replace_folder(self.work, self.path)
            self.work = self.path

    def abandon(self) -> None:
        """The run failed before its first checkpoint: leave the folder as it was found, so the
        corrected command runs without --overwrite or --resume."""
        if self.staged:
            shutil.rmtree(self.work, ignore_errors=True)
            return
        if (self.work / "checkpoints" / "latest.json").exists():
            return
        (self.work / CONFIG).unlink(missing_ok=True)
        shutil.rmtree(self.work / "checkpoints", ignore_errors=True)
        if self.created and self.work.is_dir() and not any(self.work.iterdir()):
            self.work.rmdir()

    def release(self) -> None:
        if self.lock is not None:
            self.lock.release()
            self.lock = None


def check_run_dir(out: str | Path, *, resume: bool, overwrite: bool) -> Path:
    """The run folder, checked without writing anything: an existing run is refused unless
    `resume` or `overwrite` is asked for; `resume` needs a run to continue."""
    run = Path(out)
    if resume and overwrite:
        raise ConfigError("--resume and --overwrite contradict each other; pass one of them")
    if run.exists() and not run.is_dir():
        raise ConfigError(f"--out {run} is a file, not a folder; choose another path")
    holds_files = run.is_dir() and any(run.iterdir())
    if holds_files and not (resume or overwrite):
        raise ConfigError(
            f"run folder {run} already exists and is not empty; pass --resume to continue that run "
            "or --overwrite to replace it (nothing in it was touched)"
        )
    if resume and not holds_files:
        raise ConfigError(
            f"--resume: {run} holds no run to continue; leave out --resume to start a new run there"
        )
    if resume and not (run / CONFIG).is_file():
        raise ConfigError(f"{run} holds no {CONFIG}, so it is not a run that can be resumed")
    if overwrite and holds_files and not (run / CONFIG).is_file():
        unknown = sorted(p.name for p in run.iterdir() if p.name not in RUN_FILES)
        if unknown:
            raise ConfigError(
                f"--overwrite: {run} is not a contrastkit run folder (it holds {', '.join(unknown[:3])}); "
                "choose another --out, nothing was touched"
            )
    return run


def open_run_dir(run: Path, *, overwrite: bool) -> RunFolder:
    """Lock the run folder and set up where this run writes: the folder itself, or with
    `overwrite` of an existing run a fresh staging folder beside it. Leftovers of a killed run
    (temporary files, an unfinished staging folder) are cleared."""
    lock = RunLock(run)
    try:
        staging = run.parent / f".{run.name}.new"
        shutil.rmtree(staging, ignore_errors=True)
        replacing = overwrite and run.is_dir() and any(run.iterdir())
        work = staging if replacing else run
        created = not work.exists()
        work.mkdir(parents=True, exist_ok=True)
        _check_writable(work)
        for stale in [*work.glob(".*.tmp"), *(work / "checkpoints").glob(".*.tmp")]:
            shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink(
                missing_ok=True
            )
    except BaseException:
        lock.release()
        raise
    return RunFolder(run, work, created, lock)


def _check_writable(folder: Path) -> None:
    probe = folder / f".write-test-{os.getpid()}.tmp"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(
            f"cannot write to the run folder {folder} ({exc.strerror or exc}); choose a writable --out"
        ) from None


def read_saved_config(folder: Path) -> dict | None:
    path = folder / CONFIG
    if not path.is_file():
        return None
    try:
        saved = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError):
        saved = None
    if not isinstance(saved, dict):
        raise ConfigError(
            f"{path} is damaged, so the run cannot be resumed; start again with --overwrite"
        )
    return saved


def fingerprint(path: str | Path) -> dict:
    """Size and sha256 of a data file, or of every file under a folder (names included)."""
    path = Path(path)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    digest, size = hashlib.sha256(), 0
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode())
        with open(file, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
                size += len(block)
    return {"bytes": size, "sha256": digest.hexdigest()}
