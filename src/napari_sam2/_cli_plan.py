"""Which stacks, prompt files and outputs a ``napari-sam2 segment`` call means (no model, no pixels).

Folders and globs expand to stack files; a prompt folder is matched per stack
(:func:`match_prompts`); outputs that would overwrite an input, collide with each other or
cannot be written are refused before anything runs.
"""

from __future__ import annotations

import argparse
import glob
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ._cli_tracking import track_output_path
from .errors import InputError, PromptError
from .io.partial_files import check_folder_writable
from .io.dicom import DICOM_SUFFIXES
from .io.folders import STACKS, folder_kind
from .io.stack import STACK_SUFFIXES
from .io.video import VIDEO_SUFFIXES
from .io.zarr_stack import ZARR_SUFFIXES

PROMPT_SUFFIXES = (".sam2.json", ".csv", ".tif", ".tiff", ".npy")  # in the order a prompt folder is searched
BATCH_SUFFIXES = STACK_SUFFIXES + VIDEO_SUFFIXES + DICOM_SUFFIXES  # files a batch folder runs
LABEL_SUFFIXES = (".tif", ".tiff", ".zarr")  # what --out may be for one stack


def _stem(path: Path) -> str:
    name = path.name
    for suffix in sorted(BATCH_SUFFIXES + ZARR_SUFFIXES + PROMPT_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem if path.is_file() else name


def _is_stack_file(path: Path) -> bool:
    """Stacks a batch runs: TIFF, .npy, video, DICOM files and zarr stores, not hidden, not our outputs
    or prompt files."""
    name = path.name.lower()
    if name.startswith("."):
        return False
    if path.is_dir():
        ok = name.endswith(ZARR_SUFFIXES)
    else:
        ok = path.is_file() and name.endswith(BATCH_SUFFIXES)
    return ok and not _stem(path).lower().endswith(("_labels", "_prompts"))


def expand_stacks(items: Sequence[str]) -> tuple[list[Path], bool, list[str]]:
    """STACK arguments -> stacks, whether this is a batch (folder of stacks, glob or several stacks),
    and notes saying which folder rule applied (``io.folders``)."""
    files: list[Path] = []
    notes: list[str] = []
    batch = False
    for item in items:
        path = Path(item).expanduser()
        if path.is_dir():
            kind = folder_kind(path)
            if kind != STACKS:
                notes.append(f"{path.name}: read as one stack ({kind}).")
                files.append(path)
                continue
            batch = True
            found = sorted(p for p in path.iterdir() if _is_stack_file(p))
            if not any(not p.name.startswith(".") for p in path.iterdir()):
                raise InputError(f"The folder {path} is empty; give a folder of stacks or of image frames.")
            if not found:
                raise InputError(f"The folder {path} holds no stacks (TIFF, .npy, video, DICOM or zarr) and no "
                                 "image frames; choose another folder.")
            notes.append(f"{path.name}: a folder of stacks, run as a batch of {len(found)}.")
            files += found
        elif not path.exists() and glob.has_magic(item):
            batch = True
            found = sorted(Path(p) for p in glob.glob(os.path.expanduser(item)) if _is_stack_file(Path(p)))
            if not found:
                raise InputError(f"No stack (TIFF, .npy, video, DICOM or zarr) matches {item!r}.")
            files += found
        else:
            files.append(path)  # a missing file is reported when it is opened
    unique = list(dict.fromkeys(files))
    return unique, batch or len(unique) > 1, notes


def match_prompts(folder: Path, stack: Path) -> Path:
    """The prompt file of ``stack`` in ``folder``: ``<stem>_prompts.<ext>`` first, then ``<stem>.<ext>``
    (ext: sam2.json (a session file), csv, tif, tiff, npy, in that order); the stack file itself is never
    its own prompt file."""
    stem = _stem(stack)
    names = [f"{stem}_prompts{ext}" for ext in PROMPT_SUFFIXES] + [f"{stem}{ext}" for ext in PROMPT_SUFFIXES]
    for name in names:
        candidate = folder / name
        if candidate.is_file() and candidate.resolve() != stack.resolve():
            return candidate
    raise PromptError(
        f"No prompt file for {stack.name} in {folder} (looked for {stem}_prompts.csv, {stem}.csv, "
        f"{stem}_prompts.tif, ...)."
    )


@dataclass
class Job:
    stack: Path
    prompts: Path | None  # None: the prompt folder has no file for it (reported when run)
    out: Path
    table: Path | None = None
    ctc: Path | None = None
    prompt_error: PromptError | None = None
    geff: Path | None = None  # a GEFF graph (a zarr folder)
    trackmate: Path | None = None  # a TrackMate XML file

    def outputs(self) -> list[tuple[Path, str]]:
        """(path, option) of each output file or folder."""
        items = [(self.out, "--out"), (self.table, "--table"), (self.ctc, "--ctc"), (self.geff, "--geff"),
                 (self.trackmate, "--trackmate")]
        return [(p, opt) for p, opt in items if p is not None]

    def check_writable(self) -> None:
        """OutputError (before any model is loaded) when an output folder cannot be written."""
        for path, option in self.outputs():
            check_folder_writable(path if option == "--ctc" else path.parent, option)

    def existing(self) -> list[Path]:
        found = [p for p in (self.out, self.table, self.geff, self.trackmate) if p is not None and p.exists()]
        if self.ctc is not None and self.ctc.is_dir():
            if any(self.ctc.glob("mask*.tif")) or (self.ctc / "man_track.txt").exists():
                found.append(self.ctc)
        return found


def plan_jobs(args: argparse.Namespace, parser: argparse.ArgumentParser) -> tuple[list[Job], bool, list[str]]:
    stacks, batch, notes = expand_stacks(args.stacks)
    out = Path(args.out).expanduser()
    prompts = Path(args.prompts).expanduser() if args.prompts else None  # optional with --everything
    table = Path(args.table).expanduser() if args.table else None
    ctc = Path(args.ctc).expanduser() if args.ctc else None
    geff = Path(args.geff).expanduser() if getattr(args, "geff", None) else None
    trackmate = Path(args.trackmate).expanduser() if getattr(args, "trackmate", None) else None
    zarr_out = out.suffix.lower() == ".zarr"
    if batch and out.suffix.lower() in LABEL_SUFFIXES:
        parser.error(f"with several stacks, --out is a folder (one <name>_labels.tif per stack), not {out.name}.")
    if batch and table is not None and table.suffix.lower() == ".csv":
        parser.error(f"with several stacks, --table is a folder (one <name>_objects.csv per stack), not {table.name}.")
    if not batch and not zarr_out and not out.is_dir() and out.suffix.lower() not in LABEL_SUFFIXES:
        parser.error(f"--out must be a .tif file, a .zarr folder to create (or an existing folder), not {out}.")
    jobs = []
    for stack in stacks:
        stem = _stem(stack)
        job = Job(
            stack=stack,
            prompts=prompts,
            out=out / f"{stem}_labels.tif" if batch or (out.is_dir() and not zarr_out) else out,
            table=None if table is None else (table / f"{stem}_objects.csv" if batch or table.is_dir() else table),
            ctc=None if ctc is None else (ctc / stem if batch else ctc),
            geff=track_output_path(geff, "--geff", stem, batch, parser),
            trackmate=track_output_path(trackmate, "--trackmate", stem, batch, parser),
        )
        if prompts is not None and prompts.is_dir():
            try:
                job.prompts = match_prompts(prompts, stack)
            except PromptError as err:
                job.prompts, job.prompt_error = None, err
        jobs.append(job)
    outs: dict[Path, Path] = {}
    for job in jobs:
        for p in (job.out, job.table, job.geff, job.trackmate):
            if p is None:
                continue
            key = p.resolve()
            if key == job.stack.resolve() or (job.prompts is not None and key == job.prompts.resolve()):
                parser.error(f"the output {p} would overwrite an input; choose another --out / --table.")
            if key in outs:
                parser.error(f"{outs[key].name} and {job.stack.name} would both write {p}; rename one.")
            outs[key] = job.stack
    return jobs, batch, notes
