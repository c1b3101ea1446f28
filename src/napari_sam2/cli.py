"""``napari-sam2``: segment stacks from the command line (batch mode) and list the models.

    napari-sam2 segment movie.tif --prompts clicks.csv --out movie_labels.tif
    napari-sam2 segment movies/ --prompts prompts/ --out results/ --table results/ --ctc ctc/
    napari-sam2 models
    napari-sam2 demo-live        # live tracking of a synthetic acquisition in napari (_cli_demo.py)
    napari-sam2 finetune movie.tif --labels labels.tif --out my_model.pt  # training (_cli_finetune.py)

See docs/cli.md. Exit codes: 0 ok (outputs that exist are skipped with a message), 1 other
error (e.g. an output that cannot be written), 2 usage error, 3 unreadable input stack,
4 bad prompts, 5 model not available, 130 Ctrl-C or a cancelled job, 143 SIGTERM (128 + the
signal number). Each error is one line on stderr: a :class:`~napari_sam2.errors.Sam2Error`
(the user can fix it) its message, anything else "unexpected ..., report it"; ``--debug`` shows
tracebacks. Outputs are written under hidden temporary names and renamed into place only when
complete; an error, Ctrl-C or SIGTERM removes them (``io.partial_files``, ``_cli_signals``).

Memory stays bounded: stacks are read lazily (``io.read_stack``), results stream frame by
frame into ``io.LabelsTiffWriter`` (or ``io.LabelsZarrWriter`` for ``--out x.zarr``, which
takes frames in any order). The TIFF must be written in page order; when
propagation does not visit frames in that order ("both" / "backward" from a prompt after
frame 0, or several sequences of an N-D stack), each label frame is first written raw into
a sparse temporary file beside the output (disk, not RAM) and copied into the TIFF, in
order, at the end.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from ._cli_batch import add_cluster_options, run_on_cluster
from ._cli_demo import add_demo_parser
from ._cli_everything import add_everything_options, everything_notices, everything_of
from ._cli_finetune import add_finetune_parser
from ._cli_plan import Job, plan_jobs
from ._cli_signals import Terminated, interrupt_status, terminate_as_interrupt
from ._cli_stacks import describe_stack, open_labels_writer, read_prompt_file
from ._cli_summary import LOCAL_WORKER, BatchSummary, skip_note
from ._cli_tracking import add_tracking_options, lineage_of, prepare_tracking, write_track_outputs
from .errors import Cancelled, CheckpointError, DeviceError, InputError, PromptError, Sam2Error
from .io.labels_sink import LabelsSink

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INPUT, EXIT_PROMPTS, EXIT_MODEL = 0, 1, 2, 3, 4, 5
EXIT_CANCELLED = 130  # as Ctrl-C
PROG = "napari-sam2"
__all__ = ["main"]
CLI_FEATURE_CACHE = 0  # keep only the newest frame's features: the CLI visits each frame once per pass


def exit_code(err: BaseException) -> int:
    """The exit status for an error (see the module docstring)."""
    if isinstance(err, InputError):
        return EXIT_INPUT
    if isinstance(err, PromptError):
        return EXIT_PROMPTS
    if isinstance(err, (CheckpointError, DeviceError)):  # a DownloadError is a CheckpointError
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


# --------------------------------------------------------------------------- output
def _label_frames(path: Path) -> Iterator[np.ndarray]:
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
            from .checkpoints.builtin import DEMO_MODEL, DEMO_NOTE

            name = self.args.model
            self.console.info(f"loading model {name}...")
            if name in registry_names() and not self.args.quiet:
                with tqdm_progress(f"downloading {name}") as progress:
                    self.model = get_model(name, self.args.device, self.args.image_size, progress)
            else:
                self.model = get_model(name, self.args.device, self.args.image_size)
            if name == TEST_MODEL:
                self.console.info("using the random-weights TEST model: the masks are meaningless.")
            elif name == DEMO_MODEL:
                self.console.info(f"using {DEMO_NOTE}.")
        return self.model


def check_model_spec(spec: str) -> None:
    """Fail fast (before reading any stack) when --model names nothing usable (``load_model``'s rule)."""
    from .api import TEST_MODEL
    from .checkpoints.resolve import checkpoint_source

    if spec != TEST_MODEL:
        checkpoint_source(spec)


@dataclass(frozen=True)
class JobDone:
    """What one segmented stack gives: its one-line summary and the counts of the batch table."""

    line: str
    objects: int
    frames: int


def run_job(job: Job, args: argparse.Namespace, models: ModelLoader, console: _Console) -> JobDone:
    """Segment one stack and write its outputs; returns a one-line summary.

    Every output is written under a hidden temporary name and renamed into place at the end,
    the labels TIFF last; any failure or interruption removes the temporary files.
    """
    from tqdm import tqdm

    from ._cli_stacks import session_settings
    from .api import iter_results
    from .engine.prompts import PromptSet
    from .engine.track_all import run_everything
    from .engine.video_session import VideoSession
    from .io import ObjectTable, read_stack
    from .io.ctc import publish_ctc, write_ctc
    from .io.partial_files import OUTPUT_ERRNOS, PartialOutputs, ensure_folder, output_error

    if job.prompt_error is not None:
        raise job.prompt_error
    with read_stack(job.stack, level=args.level) as stack, PartialOutputs() as temp, everything_notices(console):
        for note in stack.notes:
            console.info(note)
        info = describe_stack(stack, args.axis, args.channel)
        if info.note:
            console.info(info.note)
        layout = info.layout
        if job.ctc is not None and len(info.axes) > 4:
            raise InputError(f"--ctc needs (T, Y, X) or (T, Z, Y, X) labels; {job.stack.name} gives {info.axes}.")
        cleanup = prepare_tracking(job, info, args)  # --fill-holes ... --drop-flicker; --geff checks
        ev = args.everything_run if getattr(args, "everything_run", None) else None  # --everything
        if ev is not None:
            ev.check(layout)
        prompts = read_prompt_file(job.prompts, layout) if job.prompts is not None else PromptSet()
        session_kw, mismatch = session_settings(prompts, info.data, args.axis, args.channel)
        for note in mismatch:
            console.note(note)
        model = models.get()
        ensure_folder(job.out.parent, "--out")
        zarr_out = job.out.suffix.lower() == ".zarr"  # a chunked label image: frames land in any order
        partial = temp.folder(job.out) if zarr_out else temp.file(job.out)
        start = min(layout.starts(prompts).values(), default=None)
        way = args.direction if ev is None else ev.direction(args.direction)
        in_order = (zarr_out and not cleanup.drop_flicker) or (
            layout.in_page_order(prompts, way) if ev is None else way == "forward" or min(start or 0, ev.frame) == 0)
        spool = None if in_order else temp.file(job.out, "spool")
        outer_names = [a.lower() for i, a in enumerate(info.axes[:-2]) if i != args.axis]
        table = ObjectTable.for_stack(stack, index_names=outer_names) if job.table is not None else None
        try:
            writer = open_labels_writer(partial, zarr_out, info, 2**32 - 1 if ev else max(prompts.obj_ids))
            temp.on_cleanup(writer.abort)
            flickers = cleanup.wrap_writer(writer, layout.leading_shape, layout.axis)  # the writer, or a filter
            sink = LabelsSink(flickers, layout.leading_shape, spool)
            temp.on_cleanup(sink.close)
        except OSError as exc:
            raise output_error(job.out, exc, "--out") from None
        visited = 0
        try:
            with VideoSession(model, info.data, args.axis, channel=args.channel, rgb=layout.rgb,
                              feature_cache_bytes=CLI_FEATURE_CACHE, **session_kw) as session, \
                    tqdm(total=ev.count_visits(layout, way, start) if ev else layout.count_frames(prompts, way),
                         desc=job.stack.name, unit="frame", file=sys.stderr, disable=args.quiet,
                         leave=False) as bar:
                results = run_everything(session, ev, way, prompts) if ev else iter_results(session, prompts, way)
                for result in results:
                    sink.put(result.key, cleanup.apply(result.to_labels(writer.dtype)))
                    if table is not None:
                        table.add(result)
                    bar.update(1)
                    visited += 1
                n_objects = len(session.obj_ids)  # --everything finds them; closing the session forgets them
            sink.finish()
            if job.table is not None and table is not None:
                ensure_folder(job.table.parent, "--table")
                table_tmp = temp.file(job.table)
                table.write_csv(table_tmp)
            if job.ctc is not None:
                ensure_folder(job.ctc.parent, "--ctc")
                ctc_tmp = temp.folder(job.ctc)
                write_ctc(ctc_tmp, _label_frames(partial), n_frames=layout.leading_shape[0],
                          lineage=lineage_of(session))
            tracks = write_track_outputs(job, temp, lambda: _label_frames(partial), lineage_of(session), info)
            # everything is written: rename into place, the labels last (it exists only when all is done)
            if job.table is not None:
                temp.publish(table_tmp, job.table)
            if job.ctc is not None:
                publish_ctc(ctc_tmp, job.ctc)
            for tmp, final in tracks:  # --geff, --trackmate
                temp.publish(tmp, final)
            temp.publish(partial, job.out)
        except OSError as exc:
            if exc.errno in OUTPUT_ERRNOS:  # disk full, quota, file size limit
                raise output_error(job.out, exc, "--out") from None
            raise
    line = f"{job.stack.name}: {n_objects} object(s), {visited} frame(s) -> {job.out}"
    return JobDone(line, n_objects, visited)


# ------------------------------------------------------------------------- commands
def cmd_segment(args: argparse.Namespace, parser: argparse.ArgumentParser, console: _Console) -> int:
    check_model_spec(args.model)
    args.everything_run = everything_of(args, parser)
    jobs, batch, notes = plan_jobs(args, parser)
    for note in notes:
        console.info(note)
    on_cluster = args.workers is not None or args.scheduler is not None
    if args.resources and not on_cluster:
        parser.error("--resources needs --workers or --scheduler.")
    for job in jobs:
        job.check_writable()
    status = EXIT_OK
    with BatchSummary(Path(args.out).expanduser() if batch else None, jobs) as summary:
        if on_cluster:  # one Dask task per stack (_cli_batch)
            status = run_on_cluster(jobs, args, console, summary)
        else:
            models = ModelLoader(args, console)
            for job in jobs:
                note = skip_note(job, args.overwrite)
                if note:
                    console.note(note)
                    summary.add(job, "skipped")
                    continue
                start = time.perf_counter()
                try:
                    done_job = run_job(job, args, models, console)
                    console.info(done_job.line)
                    summary.add(job, "done", seconds=time.perf_counter() - start, worker=LOCAL_WORKER,
                                result=done_job)
                except (InputError, PromptError) as err:
                    if args.debug or not batch:
                        raise
                    console.error(f"{job.stack.name}: {err}")
                    summary.add(job, "failed", seconds=time.perf_counter() - start, worker=LOCAL_WORKER,
                                error=str(err))
                    status = status or exit_code(err)
        if batch:
            done, skipped, failed = summary.counts()
            console.info(f"{done} stack(s) segmented, {skipped} skipped, {failed} failed.")
    return status


def cmd_models(args: argparse.Namespace, parser: argparse.ArgumentParser, console: _Console) -> int:
    from .checkpoints import DEMO_MODEL, ENV_WEIGHTS_DIR, cache_dir, demo_checkpoint, is_cached, load_registry

    registry = load_registry()
    width = max(len(n) for n in [*registry.names(), DEMO_MODEL])
    print(f"{'model':<{width}}  {'size':>8}  cached")
    for name in registry.names():
        entry = registry.get(name)
        print(f"{name:<{width}}  {entry.display_size:>8}  {'yes' if is_cached(name) else 'no'}")
    try:
        demo = f"{demo_checkpoint().stat().st_size / 1e6:.0f} MB"
    except Sam2Error:
        demo = "missing"
    print(f"{DEMO_MODEL:<{width}}  {demo:>8}  built in (not Meta's SAM 2: a small demo model, see docs/weights.md)")
    folder = cache_dir()
    blocker = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)
    unusable = f" (unusable: {blocker} is a file; set {ENV_WEIGHTS_DIR} to another folder)" if blocker else ""
    print(f"cache folder: {folder}{unusable}")
    return EXIT_OK


# --------------------------------------------------------------------------- parser
def _image_size(text: str) -> int:
    from .model.loading import check_image_size

    try:
        return check_image_size(int(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    except InputError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


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
                     help="TIFF / OME-TIFF / .npy stack, video clip, DICOM file or series folder, zarr / "
                          "OME-Zarr, folder of image frames; or a folder of stacks or a glob (batch mode)")
    seg.add_argument("--prompts", metavar="PROMPTS",
                     help="napari Points CSV, Shapes CSV or labels TIFF; in batch mode also a folder of "
                          "<name>_prompts.csv / <name>.csv / <name>_prompts.tif ... files (optional with "
                          "--everything)")
    seg.add_argument("--out", required=True, metavar="LABELS.tif",
                     help="labels TIFF, or a .zarr folder (chunked OME-Zarr, for huge inputs), to write; in "
                          "batch mode a folder (<name>_labels.tif per stack)")
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
    seg.add_argument("--level", type=int, default=0, metavar="L",
                     help="resolution level of an OME-Zarr image (0 = full resolution, 1 = half, ...)")
    seg.add_argument("--channel", type=int, default=None, metavar="C",
                     help="channel of a multichannel stack to segment on")
    seg.add_argument("--table", metavar="OBJECTS.csv",
                     help="per-object, per-frame table CSV (batch mode: a folder)")
    seg.add_argument("--ctc", metavar="DIR", help="also export Cell Tracking Challenge masks + man_track.txt "
                                                 "(batch mode: one subfolder per stack)")
    seg.add_argument("--overwrite", action="store_true", help="replace existing outputs (default: skip the stack)")
    seg.add_argument("--quiet", action="store_true", help="no progress bars or information messages")
    seg.add_argument("--debug", action="store_true", help="show tracebacks")
    add_everything_options(seg)  # --everything, --discover-every, --divisions, filters (_cli_everything.py)
    add_tracking_options(seg)  # --fill-holes ... --drop-flicker, --geff, --trackmate (_cli_tracking.py)
    add_cluster_options(seg)  # --workers / --scheduler / --resources (docs/cli.md, "Batch on a cluster")
    seg.set_defaults(func=cmd_segment)

    mod = sub.add_parser("models", help="list the model names and which are cached",
                         description="List the SAM 2 / 2.1 checkpoints by name and whether they are cached.")
    mod.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    mod.set_defaults(func=cmd_models, quiet=False)
    add_demo_parser(sub, _device, _image_size)  # demo-live (_cli_demo.py)
    add_finetune_parser(sub, _device, _image_size)  # finetune (_cli_finetune.py)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # usage errors: exit 2
    console = _Console(getattr(args, "quiet", False))
    try:
        with terminate_as_interrupt():
            return args.func(args, parser, console)
    except KeyboardInterrupt as err:
        how = err.name if isinstance(err, Terminated) and err.name != "SIGINT" else "Ctrl-C"
        console.error(f"interrupted ({how}); unfinished outputs were removed.")
        return interrupt_status(err)
    except Cancelled as err:  # not a failure: a notice
        if args.debug:
            raise
        console.note(f"cancelled: {err}")
        return EXIT_CANCELLED
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
