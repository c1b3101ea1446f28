"""The batch summary table (``batch_summary.csv`` in the ``--out`` folder), for both batch paths.

One row per stack, in the order the stacks were planned: ``stack, status, frames, objects,
seconds, worker, error`` with status ``done``, ``skipped`` or ``failed``. It is written under
a hidden temporary name and renamed into place, so a reader never sees half a table; a rerun
replaces it (a stack finished earlier then reads ``skipped``).
"""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path
from types import TracebackType
from typing import Any

from ._cli_plan import Job
from .io.partial_files import ensure_folder, hidden_sibling, output_error

SUMMARY_NAME = "batch_summary.csv"
SUMMARY_COLUMNS = ("stack", "status", "frames", "objects", "seconds", "worker", "error")
LOCAL_WORKER = "local"  # the worker column of the in-process batch


def skip_note(job: Job, overwrite: bool) -> str | None:
    """The "skipped" line for a stack whose outputs exist (None: run it)."""
    existing = job.existing()
    if not existing or overwrite:
        return None
    return f"skipped {job.stack.name}: {existing[0]} already exists (use --overwrite to replace it)."


def temp_names(job: Job) -> list[Path]:
    """The hidden temporary files and folders a job may leave when its process is killed (SIGKILL, OOM)."""
    paths = [hidden_sibling(job.out, "partial"), hidden_sibling(job.out, "spool"),
             job.out.with_name(f".{job.out.name}.partial")]
    if job.table is not None:
        paths.append(hidden_sibling(job.table, "partial"))
    if job.ctc is not None:
        paths.append(job.ctc.with_name(f".{job.ctc.name}.partial"))
    if getattr(job, "geff", None) is not None:
        paths.append(job.geff.with_name(f".{job.geff.name}.partial"))
    if getattr(job, "trackmate", None) is not None:
        paths.append(hidden_sibling(job.trackmate, "partial"))
    return paths


def remove_temps(job: Job) -> None:
    """Remove what a killed process left of ``job`` (only call it when no process still runs the job)."""
    for path in temp_names(job):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


class BatchSummary:
    """Collects one row per stack and writes ``batch_summary.csv`` atomically (no-op without a folder).

    Use as a context manager: leaving the block writes the table; when an error or Ctrl-C is on its
    way out, a table that cannot be written does not hide that error.
    """

    def __init__(self, folder: Path | None, jobs: list[Job]) -> None:
        self.folder = folder
        self._order = {job.stack: i for i, job in enumerate(jobs)}
        self._rows: dict[Path, dict[str, Any]] = {}

    def add(self, job: Job, status: str, *, seconds: float | None = None, worker: str = "",
            result: Any = None, error: str = "") -> None:
        """Record a stack's outcome; frames and objects from ``run_job``'s result (a ``cli.JobDone``)."""
        self._rows[job.stack] = {
            "stack": job.stack.name, "status": status,
            "frames": "" if result is None else result.frames, "objects": "" if result is None else result.objects,
            "seconds": "" if seconds is None else f"{seconds:.2f}", "worker": worker,
            "error": " ".join(error.split()),
        }

    def counts(self) -> tuple[int, int, int]:
        """(done, skipped, failed)."""
        statuses = [row["status"] for row in self._rows.values()]
        return statuses.count("done"), statuses.count("skipped"), statuses.count("failed")

    def rows(self) -> list[dict[str, Any]]:
        """The rows in plan order (stack order), whatever order the stacks finished in."""
        last = len(self._order)
        return [self._rows[p] for p in sorted(self._rows, key=lambda p: self._order.get(p, last))]

    def write(self) -> Path | None:
        """Write the table into the folder (created when missing); returns its path."""
        if self.folder is None:
            return None
        final = self.folder / SUMMARY_NAME
        ensure_folder(self.folder, "--out")
        temp = hidden_sibling(final, "partial")
        try:
            with open(temp, "w", newline="", encoding="utf-8") as fh:
                writer = csv.DictWriter(fh, fieldnames=SUMMARY_COLUMNS)
                writer.writeheader()
                writer.writerows(self.rows())
            os.replace(temp, final)
        except OSError as exc:
            temp.unlink(missing_ok=True)
            raise output_error(final, exc, "--out") from None
        return final

    def __enter__(self) -> BatchSummary:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc is None:
            self.write()
            return
        if not self._rows:
            return  # stopped before any stack was looked at: nothing to tell, no folder to create
        try:
            self.write()
        except Exception:
            pass  # the error on its way out matters more than the table
