"""``napari-sam2``: segment stacks from the command line (batch mode) and list the models.

    napari-sam2 segment movie.tif --prompts clicks.csv --out movie_labels.tif
    napari-sam2 segment movies/ --prompts prompts/ --out results/ --table results/ --ctc ctc/
    napari-sam2 models

See docs/cli.md. Exit codes: 0 ok (outputs that exist are skipped with a message), 1 other
error, 2 usage error, 3 unreadable input stack, 4 bad prompts, 5 model not available. Each
error is one line on stderr; ``--debug`` shows tracebacks.

Memory stays bounded: stacks are read lazily (``io.read_stack``), results stream frame by
frame into ``io.LabelsTiffWriter``. The TIFF must be written in page order; when
propagation does not visit frames in that order ("both" / "backward" from a prompt after
frame 0, or several sequences of an N-D stack), each label frame is first written raw into
a sparse temporary file beside the output (disk, not RAM) and copied into the TIFF, in
order, at the end.
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import os
import re
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from .errors import CheckpointError, DeviceError, DownloadError, InputError, PromptError, Sam2Error

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INPUT, EXIT_PROMPTS, EXIT_MODEL = 0, 1, 2, 3, 4, 5
PROG = "napari-sam2"
STACK_SUFFIXES = (".tif", ".tiff", ".ome.tif", ".ome.tiff", ".btf", ".npy")
PROMPT_SUFFIXES = (".csv", ".tif", ".tiff", ".npy")
CLI_FEATURE_CACHE = 0  # keep only the newest frame's features: the CLI visits each frame once per pass


def exit_code(err: BaseException) -> int:
    """The exit status for an error (see the module docstring)."""
    if isinstance(err, InputError):
        return EXIT_INPUT
    if isinstance(err, PromptError):
        return EXIT_PROMPTS
    if isinstance(err, (CheckpointError, DownloadError, DeviceError)):
        return EXIT_MODEL
    return EXIT_ERROR


class _Console:
    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet

    def info(self, msg: str) -> None:
        if not self.quiet:
            print(f"{PROG}: {msg}", file=sys.stderr, flush=True)

    def note(self, msg: str) -> None:  # shown also with --quiet (skips)
        print(f"{PROG}: {msg}", file=sys.stderr, flush=True)

    def error(self, msg: str) -> None:
        print(f"{PROG}: error: {' '.join(str(msg).split())}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------- planning
def _stem(path: Path) -> str:
    name = path.name
    for suffix in sorted(STACK_SUFFIXES + PROMPT_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _is_stack_file(path: Path) -> bool:
    """Stacks found in a folder or by a glob: TIFF/.npy, not hidden, not our outputs or prompt files."""
    name = path.name.lower()
    if name.startswith(".") or not path.is_file() or not name.endswith(STACK_SUFFIXES):
        return False
    return not _stem(path).lower().endswith(("_labels", "_prompts"))


def expand_stacks(items: Sequence[str]) -> tuple[list[Path], bool]:
    """STACK arguments -> stack files and whether this is a batch (folder, glob or several stacks)."""
    files: list[Path] = []
    batch = False
    for item in items:
        path = Path(item).expanduser()
        if path.is_dir():
            batch = True
            found = sorted(p for p in path.iterdir() if _is_stack_file(p))
            if not found:
                raise InputError(f"The folder {path} holds no TIFF or .npy stacks.")
            files += found
        elif not path.exists() and glob.has_magic(item):
            batch = True
            found = sorted(Path(p) for p in glob.glob(os.path.expanduser(item)) if _is_stack_file(Path(p)))
            if not found:
                raise InputError(f"No TIFF or .npy stack matches {item!r}.")
            files += found
        else:
            files.append(path)  # a missing file is reported when it is opened
    unique = list(dict.fromkeys(files))
    return unique, batch or len(unique) > 1


def match_prompts(folder: Path, stack: Path) -> Path:
    """The prompt file of ``stack`` in ``folder``: ``<stem>_prompts.<ext>`` first, then ``<stem>.<ext>``
    (ext: csv, tif, tiff, npy, in that order); the stack file itself is never its own prompt file."""
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

    def existing(self) -> list[Path]:
        found = [p for p in (self.out, self.table) if p is not None and p.exists()]
        if self.ctc is not None and self.ctc.is_dir():
            if any(self.ctc.glob("mask*.tif")) or (self.ctc / "man_track.txt").exists():
                found.append(self.ctc)
        return found


def plan_jobs(args: argparse.Namespace, parser: argparse.ArgumentParser) -> tuple[list[Job], bool]:
    stacks, batch = expand_stacks(args.stacks)
    out = Path(args.out).expanduser()
    prompts = Path(args.prompts).expanduser()
    table = Path(args.table).expanduser() if args.table else None
    ctc = Path(args.ctc).expanduser() if args.ctc else None
    if batch and out.suffix.lower() in (".tif", ".tiff"):
        parser.error(f"with several stacks, --out is a folder (one <name>_labels.tif per stack), not {out.name}.")
    if batch and table is not None and table.suffix.lower() == ".csv":
        parser.error(f"with several stacks, --table is a folder (one <name>_objects.csv per stack), not {table.name}.")
    if not batch and not out.is_dir() and out.suffix.lower() not in (".tif", ".tiff"):
        parser.error(f"--out must be a .tif file (or an existing folder), not {out}.")
    jobs = []
    for stack in stacks:
        stem = _stem(stack)
        job = Job(
            stack=stack,
            prompts=prompts,
            out=out / f"{stem}_labels.tif" if batch or out.is_dir() else out,
            table=None if table is None else (table / f"{stem}_objects.csv" if batch or table.is_dir() else table),
            ctc=None if ctc is None else (ctc / stem if batch else ctc),
        )
        if prompts.is_dir():
            try:
                job.prompts = match_prompts(prompts, stack)
            except PromptError as err:
                job.prompts, job.prompt_error = None, err
        jobs.append(job)
    outs: dict[Path, Path] = {}
    for job in jobs:
        for p in (job.out, job.table):
            if p is None:
                continue
            key = p.resolve()
            if key == job.stack.resolve() or (job.prompts is not None and key == job.prompts.resolve()):
                parser.error(f"the output {p} would overwrite an input; choose another --out / --table.")
            if key in outs:
                parser.error(f"{outs[key].name} and {job.stack.name} would both write {p}; rename one.")
            outs[key] = job.stack
    return jobs, batch


# --------------------------------------------------------------------------- stacks
class ChannelLast:
    """Lazy view of a stack with its channel axis moved last (where VideoSession expects it)."""

    def __init__(self, data: Any, channel_axis: int) -> None:
        self.data, self.c = data, channel_axis
        shape = list(data.shape)
        n = shape.pop(channel_axis)
        self.shape = (*shape, n)
        self.dtype = np.dtype(data.dtype)
        self.ndim = len(self.shape)

    def __getitem__(self, key: Any) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        key = key + (slice(None),) * (self.ndim - len(key))
        src = list(key[:-1])
        src.insert(self.c, key[-1])
        out = np.asarray(self.data[tuple(src)])
        if isinstance(key[-1], (int, np.integer)):
            return out
        pos = sum(not isinstance(k, (int, np.integer)) for k in src[: self.c])
        return np.moveaxis(out, pos, -1)


@dataclass
class StackInfo:
    data: Any  # channels last
    geo: Any  # api.Geometry
    rgb: bool
    axes: str  # of the labels: the stack's axes without C
    scale: tuple[float, ...] | None
    unit: str | None
    note: str | None = None


def describe_stack(stack: Any, axis: int, channel: int | None) -> StackInfo:
    """Axes, geometry and calibration of an opened ``io.Stack`` for segmentation."""
    from .api import Geometry

    data, axes = stack.data, stack.axes
    note = None
    if axes == "CYX" and channel is None:  # e.g. tifffile.imwrite(imagej=True) without axes: frames, really
        axes = "TYX"
        note = f"{stack.path.name if stack.path else 'the stack'} has a channel axis only: using its channels as frames."
    if "C" in axes and not axes.endswith("C"):
        data = ChannelLast(data, axes.index("C"))
        axes = axes.replace("C", "") + "C"
    rgb = axes.endswith("C")
    n_channels = data.shape[-1] if rgb else 1
    name = stack.path.name if stack.path else "the stack"
    if channel is not None and not 0 <= channel < n_channels:
        raise InputError(f"{name} has {n_channels} channel(s) (axes {stack.axes}); "
                         f"--channel must be 0 to {n_channels - 1}.")
    if rgb and channel is None and n_channels not in (1, 3, 4):
        raise InputError(f"{name} has {n_channels} channels; choose one with --channel (0 to {n_channels - 1}).")
    spatial = axes[:-1] if rgb else axes
    lead = spatial[:-2]
    if not lead:
        raise InputError(f"{name} is a single 2D image (axes {stack.axes}); give a stack (T, Y, X) or more.")
    if not 0 <= axis < len(lead):
        raise InputError(f"--axis {axis} is not one of the leading axes {lead} of {name} (0 to {len(lead) - 1}).")
    shape = tuple(int(n) for n in data.shape)
    geo = Geometry(shape[: len(lead)], shape[len(lead) : len(lead) + 2], axis)
    scale = None
    if stack.scale is not None:
        size = dict(zip(stack.axes, stack.scale))
        scale = tuple(float(size.get(a, 1.0)) for a in spatial)
    return StackInfo(data, geo, rgb, spatial, scale, stack.unit, note)


def read_prompt_file(path: Path, geo: Any) -> Any:
    """Prompts of ``path`` (io.read_prompts) for a stack of geometry ``geo``, checked and ready."""
    from .api import check_prompt_set
    from .engine.prompts import PromptSet
    from .io import read_prompts

    n_lead = len(geo.leading)
    kwargs = dict(ndim=n_lead + 2, n_frames=geo.leading[-1], frame_shape=geo.frame_shape)
    if n_lead == 1:
        prompts = read_prompts(path, **kwargs)
    else:  # outer positions one by one: the file's last leading column is its "frame"
        prompts = PromptSet()
        for outer in np.ndindex(*geo.leading[:-1]):
            part = read_prompts(path, index=outer, **kwargs)
            for name in ("points", "boxes", "masks"):
                getattr(prompts, name).extend(
                    dataclasses.replace(p, frame=(*outer, int(p.frame))) for p in getattr(part, name)
                )
    return check_prompt_set(prompts, geo, source=path.name)


# --------------------------------------------------------------------------- output
class LabelsSink:
    """Label frames in, in any order; one TIFF out, written in page order with bounded memory.

    With ``spool`` None, frames must come in increasing page order and go straight to the
    writer. Otherwise each frame is stored raw at its offset in a sparse temporary file and
    :meth:`finish` copies the stored frames into the writer in order (frames never stored
    are written as zeros by the writer).
    """

    def __init__(self, writer: Any, leading: tuple[int, ...], spool: Path | None) -> None:
        self.writer = writer
        self.leading = leading
        self.spool = spool
        self.frame_shape = writer.shape[-2:]
        self.dtype = writer.dtype
        self.page_bytes = int(np.prod(self.frame_shape)) * self.dtype.itemsize
        self._fh = None
        if spool is not None:
            self._fh = open(spool, "w+b")
            self._fh.truncate(writer.n_pages * self.page_bytes)  # sparse: unwritten pages cost no disk
            self._stored = np.zeros(writer.n_pages, bool)

    def put(self, key: Sequence[int], labels: np.ndarray) -> None:
        page = int(np.ravel_multi_index(tuple(key), self.leading))
        if self._fh is None:
            self.writer.write(page, labels)
            return
        self._fh.seek(page * self.page_bytes)
        self._fh.write(np.ascontiguousarray(labels, dtype=self.dtype).tobytes())
        self._stored[page] = True

    def finish(self) -> None:
        if self._fh is not None:
            self._fh.flush()
            for page in np.flatnonzero(self._stored):
                self._fh.seek(int(page) * self.page_bytes)
                frame = np.frombuffer(self._fh.read(self.page_bytes), self.dtype).reshape(self.frame_shape)
                self.writer.write(int(page), frame)
        self.writer.close()

    def close(self) -> None:
        """Release the temporary file (after finish, or on failure)."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        if self.spool is not None:
            self.spool.unlink(missing_ok=True)


def _hidden(path: Path, tag: str) -> Path:
    return path.with_name(f".{path.stem}.{tag}{path.suffix}")


def _tiff_frames(path: Path) -> Iterator[np.ndarray]:
    from .io import read_stack

    with read_stack(path) as stack:
        for t in range(stack.shape[0]):
            yield np.asarray(stack.data[t])


class ModelLoader:
    """Loads the model on first use only (skipped or failing stacks never pay for it)."""

    def __init__(self, args: argparse.Namespace, console: _Console) -> None:
        self.args, self.console = args, console
        self.model: Any = None

    def get(self) -> Any:
        if self.model is None:
            from .api import TEST_MODEL, get_model
            from .checkpoints import registry_names, tqdm_progress

            name = self.args.model
            self.console.info(f"loading model {name}...")
            if name in registry_names() and not self.args.quiet:
                with tqdm_progress(f"downloading {name}") as progress:
                    self.model = get_model(name, self.args.device, self.args.image_size, progress)
            else:
                self.model = get_model(name, self.args.device, self.args.image_size)
            if name == TEST_MODEL:
                self.console.info("using the random-weights TEST model: the masks are meaningless.")
        return self.model


def check_model_spec(spec: str) -> None:
    """Fail fast (before reading any stack) when --model names nothing usable."""
    from .api import TEST_MODEL
    from .checkpoints import registry_names

    names = registry_names()
    if spec == TEST_MODEL or spec in names:
        return
    path = Path(spec).expanduser()
    if path.is_file():
        return
    if path.exists():
        raise CheckpointError(f"--model {spec} is a folder; give the .pt checkpoint file itself.")
    if path.suffix or "/" in spec or os.sep in spec:
        raise CheckpointError(f"The checkpoint file {path} does not exist; check the path, or use a model name "
                              f"({', '.join(names)}).")
    raise CheckpointError(f"Unknown model {spec!r}; choose one of {', '.join(names)} (see `{PROG} models`) "
                          "or give the path of a .pt checkpoint.")


def run_job(job: Job, args: argparse.Namespace, models: ModelLoader, console: _Console) -> str:
    """Segment one stack and write its outputs; returns a one-line summary."""
    from tqdm import tqdm

    from .api import iter_results
    from .io import LabelsTiffWriter, ObjectTable, read_stack, write_ctc

    if job.prompt_error is not None:
        raise job.prompt_error
    with read_stack(job.stack) as stack:
        info = describe_stack(stack, args.axis, args.channel)
        if info.note:
            console.info(info.note)
        geo = info.geo
        if job.ctc is not None and len(info.axes) > 4:
            raise InputError(f"--ctc needs (T, Y, X) or (T, Z, Y, X) labels; {job.stack.name} gives {info.axes}.")
        assert job.prompts is not None
        prompts = read_prompt_file(job.prompts, geo)
        model = models.get()
        from .engine.video_session import VideoSession

        max_label = max(prompts.obj_ids)
        job.out.parent.mkdir(parents=True, exist_ok=True)
        partial = _hidden(job.out, "partial")
        spool = None if geo.in_page_order(prompts, args.direction) else _hidden(job.out, "spool")
        outer_names = [a.lower() for i, a in enumerate(info.axes[:-2]) if i != args.axis]
        table = ObjectTable.for_stack(stack, index_names=outer_names) if job.table is not None else None
        writer = LabelsTiffWriter(partial, geo.labels_shape, max_label=max_label, axes=info.axes,
                                  scale=info.scale, unit=info.unit)
        sink = LabelsSink(writer, geo.leading, spool)
        table_tmp = None if job.table is None else _hidden(job.table, "partial")
        visited = 0
        try:
            with VideoSession(model, info.data, args.axis, channel=args.channel, rgb=info.rgb,
                              feature_cache_bytes=CLI_FEATURE_CACHE) as session, \
                    tqdm(total=geo.count_frames(prompts, args.direction), desc=job.stack.name, unit="frame",
                         file=sys.stderr, disable=args.quiet, leave=False) as bar:
                for result in iter_results(session, prompts, args.direction):
                    sink.put(geo.result_key(result), result.to_labels(writer.dtype))
                    if table is not None:
                        table.add(result)
                    bar.update(1)
                    visited += 1
            sink.finish()
            if job.ctc is not None:
                write_ctc(job.ctc, _tiff_frames(partial), n_frames=geo.leading[0], overwrite=args.overwrite)
            if table is not None and table_tmp is not None and job.table is not None:
                job.table.parent.mkdir(parents=True, exist_ok=True)
                table.write_csv(table_tmp)
                os.replace(table_tmp, job.table)
            os.replace(partial, job.out)  # last: the labels file exists only when everything is done
        finally:
            sink.close()
            writer.close()
            partial.unlink(missing_ok=True)
            if table_tmp is not None:
                table_tmp.unlink(missing_ok=True)
    return f"{job.stack.name}: {len(prompts.obj_ids)} object(s), {visited} frame(s) -> {job.out}"


# ------------------------------------------------------------------------- commands
def cmd_segment(args: argparse.Namespace, parser: argparse.ArgumentParser, console: _Console) -> int:
    check_model_spec(args.model)
    jobs, batch = plan_jobs(args, parser)
    models = ModelLoader(args, console)
    status = EXIT_OK
    done = skipped = failed = 0
    for job in jobs:
        existing = job.existing()
        if existing and not args.overwrite:
            console.note(f"skipped {job.stack.name}: {existing[0]} already exists (use --overwrite to replace it).")
            skipped += 1
            continue
        try:
            console.info(run_job(job, args, models, console))
            done += 1
        except (InputError, PromptError) as err:
            if args.debug or not batch:
                raise
            console.error(f"{job.stack.name}: {err}")
            failed += 1
            status = status or exit_code(err)
    if batch:
        console.info(f"{done} stack(s) segmented, {skipped} skipped, {failed} failed.")
    return status


def cmd_models(args: argparse.Namespace, parser: argparse.ArgumentParser, console: _Console) -> int:
    from .checkpoints import cache_dir, is_cached, load_registry

    registry = load_registry()
    width = max(len(n) for n in registry.names())
    print(f"{'model':<{width}}  {'size':>8}  cached")
    for name in registry.names():
        entry = registry.get(name)
        print(f"{name:<{width}}  {entry.display_size:>8}  {'yes' if is_cached(name) else 'no'}")
    print(f"cache folder: {cache_dir()}")
    return EXIT_OK


# --------------------------------------------------------------------------- parser
def _image_size(text: str) -> int:
    try:
        size = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if size % 64 or not 256 <= size <= 1024:
        raise argparse.ArgumentTypeError(f"{size} is not a multiple of 64 between 256 and 1024")
    return size


def _device(text: str) -> str:
    if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not one of auto, cpu, cuda, cuda:N, mps")
    return text


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog=PROG, description="SAM 2 video segmentation without a GUI.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    seg = sub.add_parser(
        "segment", help="segment and track prompted objects through stacks",
        description="Segment and track the prompted objects through each STACK and write a labels TIFF.",
        epilog="Exit codes: 0 ok (existing outputs skipped), 1 other error, 2 usage, 3 unreadable stack, "
               "4 bad prompts, 5 model not available. See docs/cli.md.",
    )
    seg.add_argument("stacks", nargs="+", metavar="STACK",
                     help="TIFF / OME-TIFF / .npy stack, a folder of stacks or a glob (batch mode)")
    seg.add_argument("--prompts", required=True, metavar="PROMPTS",
                     help="napari Points CSV, Shapes CSV or labels TIFF; in batch mode also a folder of "
                          "<name>_prompts.csv / <name>.csv / <name>_prompts.tif ... files")
    seg.add_argument("--out", required=True, metavar="LABELS.tif",
                     help="labels TIFF to write; in batch mode a folder (<name>_labels.tif per stack)")
    seg.add_argument("--model", default="sam2.1_hiera_tiny", metavar="NAME_OR_PATH",
                     help="registry name (see `napari-sam2 models`; downloaded once) or a .pt checkpoint "
                          "(default: %(default)s; 'test-random' is a random-weights model for testing only)")
    seg.add_argument("--device", default="auto", type=_device, help="auto, cpu, cuda[:N] or mps (default: auto)")
    seg.add_argument("--axis", type=int, default=0, metavar="N",
                     help="leading axis to propagate along, 0 = first (default: 0)")
    seg.add_argument("--direction", choices=("forward", "backward", "both"), default="both",
                     help="from the earliest prompted frame (default: both)")
    seg.add_argument("--image-size", type=_image_size, default=None, metavar="N",
                     help="run the model at N px (multiple of 64, 256-1024; default: the model's)")
    seg.add_argument("--channel", type=int, default=None, metavar="C",
                     help="channel of a multichannel stack to segment on")
    seg.add_argument("--table", metavar="OBJECTS.csv",
                     help="per-object, per-frame table CSV (batch mode: a folder)")
    seg.add_argument("--ctc", metavar="DIR", help="also export Cell Tracking Challenge masks + man_track.txt "
                                                 "(batch mode: one subfolder per stack)")
    seg.add_argument("--overwrite", action="store_true", help="replace existing outputs (default: skip the stack)")
    seg.add_argument("--quiet", action="store_true", help="no progress bars or information messages")
    seg.add_argument("--debug", action="store_true", help="show tracebacks")
    seg.set_defaults(func=cmd_segment)

    mod = sub.add_parser("models", help="list the model names and which are cached",
                         description="List the SAM 2 / 2.1 checkpoints by name and whether they are cached.")
    mod.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    mod.set_defaults(func=cmd_models, quiet=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # usage errors: exit 2
    console = _Console(getattr(args, "quiet", False))
    try:
        return args.func(args, parser, console)
    except KeyboardInterrupt:
        console.error("interrupted; unfinished outputs were removed.")
        return 130
    except Sam2Error as err:
        if args.debug:
            raise
        console.error(err)
        return exit_code(err)
    except OSError as err:
        if args.debug:
            raise
        where = f" ({err.filename})" if err.filename else ""
        console.error(f"{err.strerror or err}{where}")
        return EXIT_ERROR
    except Exception as err:  # a bug: say so in one line, the traceback with --debug
        if args.debug:
            traceback.print_exc()
        console.error(f"unexpected {type(err).__name__}: {err} (run with --debug for the traceback and report it)")
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
