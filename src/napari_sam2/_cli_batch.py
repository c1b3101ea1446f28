"""Batch mode on a Dask distributed cluster: ``--workers N`` (a local cluster) or ``--scheduler ADDRESS``.

One Dask task per stack runs the CLI's own per-stack job (:func:`napari_sam2.cli.run_job`) in a
worker process, which loads the model once and keeps it for the next stacks (:func:`segment_stack`).
Skips, outputs and the summary table are the in-process batch's. Outputs are renamed into place
only when complete, so a worker killed mid-stack (SIGKILL, out of memory) leaves none; the
scheduler reruns its task on another worker, which replaces the stale temporary files. User
errors come back as a ``failed`` record, not retried. ``distributed`` is imported only when used.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import sys
import time
import traceback
import uuid
from contextlib import contextmanager
from typing import Any, Iterator

from ._cli_plan import Job
from ._cli_summary import BatchSummary, remove_temps, skip_note
from .errors import InputError, PromptError, Sam2Error

RETRIES = 2  # reruns of a task that raised an unexpected error (a worker that dies is rescheduled anyway)
_LOADERS: dict[tuple[Any, ...], Any] = {}  # in a worker process: (model, device, image size) -> its ModelLoader


def add_cluster_options(parser: argparse.ArgumentParser) -> None:
    """--workers / --scheduler / --resources of ``napari-sam2 segment``."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--workers", type=_positive, default=None, metavar="N",
                       help="run the stacks on a local Dask cluster of N worker processes (one stack at a time "
                            "and one model each; needs napari-sam2[cluster])")
    where.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="run the stacks on an existing Dask scheduler, e.g. tcp://host:8786")
    parser.add_argument("--resources", type=parse_resources, default=None, metavar="NAME=N",
                        help="Dask resources each stack needs, e.g. GPU=1 (with --workers / --scheduler)")


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)


def parse_resources(text: str) -> dict[str, float]:
    """``"GPU=1,MEM=4e9"`` (commas or spaces) -> ``{"GPU": 1.0, "MEM": 4e9}``."""
    out: dict[str, float] = {}
    for item in text.replace(",", " ").split():
        name, _, value = item.partition("=")
        try:
            out[name] = float(value if name else "no name")
        except ValueError:
            raise argparse.ArgumentTypeError(f"{item!r} is not NAME=NUMBER (e.g. GPU=1)") from None
    if not out:
        raise argparse.ArgumentTypeError("give at least one NAME=NUMBER (e.g. GPU=1)")
    return out


def import_distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise InputError('Batch runs on a cluster need Dask distributed; install it with '
                         'pip install "napari-sam2[cluster]".') from None
    return distributed


# --------------------------------------------------------------------------- worker side
def worker_device(device: str, worker_name: Any) -> str:
    """Local worker *i* of a machine with several GPUs gets GPU *i* (mod count) for ``auto`` / ``cuda``;
    workers that see one GPU (``CUDA_VISIBLE_DEVICES`` per worker) keep ``device`` as it is."""
    if device not in ("auto", "cuda") or not isinstance(worker_name, int):
        return device
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return f"cuda:{worker_name % count}" if count > 1 else device


def segment_stack(job: Job, options: dict[str, Any]) -> dict[str, Any]:
    """The Dask task: one stack through ``cli.run_job``, with this process's cached model.

    Returns a record (status, result line, seconds, worker, messages); a Sam2Error is returned in it,
    not raised, so that Dask does not retry a stack that can only fail again.
    """
    from . import cli

    try:
        from distributed import get_worker

        worker = get_worker()
        address, name = worker.address, worker.name
    except (ImportError, ValueError):
        address, name = "local", None
    args = argparse.Namespace(**options)
    args.device = worker_device(args.device, name)
    console = _Recorder()
    key = (args.model, args.device, args.image_size)
    if key not in _LOADERS:
        _LOADERS.clear()  # one model per worker process (a long-lived worker may serve several batches)
        _LOADERS[key] = cli.ModelLoader(args, console)
    models = _LOADERS[key]
    models.console = console  # the "loading model" lines go with the stack that loads it
    record: dict[str, Any] = {"worker": address, "messages": console.lines, "result": None, "error": None}
    start = time.perf_counter()
    try:
        record["result"] = cli.run_job(job, args, models, console)
        record["status"] = "done"
    except Sam2Error as err:
        record.update(status="failed", error=err, code=cli.exit_code(err),
                      traceback=traceback.format_exc() if args.debug else "")
    record["seconds"] = time.perf_counter() - start
    return record


class _Recorder:
    """A console for workers: keeps (kind, line) for the client to print (worker stderr is nobody's)."""

    quiet = True

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def info(self, msg: str) -> None:
        self.lines.append(("info", str(msg)))

    def note(self, msg: str) -> None:  # shown with --quiet too
        self.lines.append(("note", str(msg)))

    def error(self, msg: str) -> None:
        self.lines.append(("error", str(msg)))


# --------------------------------------------------------------------------- client side
@contextmanager
def cluster_client(args: argparse.Namespace, console: Any) -> Iterator[Any]:
    """A ``distributed.Client`` on ``--scheduler`` or on a new local cluster of ``--workers`` processes."""
    distributed = import_distributed()
    cluster = None
    if args.scheduler:
        try:
            client = distributed.Client(args.scheduler, timeout="10s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise InputError(f"Cannot connect to the Dask scheduler at {args.scheduler} ({exc}); start one "
                             "(`dask scheduler`, then `dask worker ADDRESS`) or fix --scheduler.") from None
    else:
        import dask

        console.info(f"starting a local Dask cluster of {args.workers} worker process(es)...")
        with dask.config.set(local_worker_environ(args.workers)):
            cluster = distributed.LocalCluster(
                n_workers=args.workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                dashboard_address="127.0.0.1:8787", resources=args.resources)
        client = distributed.Client(cluster)
    try:
        link = client.dashboard_link if "dashboard" in client.scheduler_info().get("services", {}) else None
        plots = "" if importlib.util.find_spec("bokeh") else " (its plots need: pip install bokeh)"
        console.info(f"Dask dashboard: {link}{plots}" if link else "Dask dashboard: not available.")
        if args.scheduler:
            _check_workers(client, args.resources, console)
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def local_worker_environ(workers: int) -> dict[str, Any]:
    """Dask config for the environment of local worker processes (read when they are started).

    Dask's default ``MALLOC_TRIM_THRESHOLD_=65536`` makes glibc give memory back at once and map
    every large buffer afresh: 1.5x slower torch on CPU (any fixed value does it), so it is dropped.
    The cores are shared out between the workers (Dask's default is 1 thread each); variables set
    in the shell win.
    """
    threads = max(1, (os.cpu_count() or 1) // workers)
    key = "distributed.nanny.pre-spawn-environ."
    return {key + "MALLOC_TRIM_THRESHOLD_": None,
            **{key + name: threads for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}}


def _check_workers(client: Any, resources: dict[str, float] | None, console: Any) -> None:
    """A note when no worker (with the resources asked for) is there yet: the tasks wait for one."""
    workers = client.scheduler_info().get("workers", {}).values()
    fits = [w for w in workers if all(w.get("resources", {}).get(k, 0) >= v for k, v in (resources or {}).items())]
    if not fits:
        need = f" with {','.join(f'{k}={v:g}' for k, v in resources.items())}" if resources else ""
        console.note(f"the scheduler has no worker{need} yet: the stacks wait for one (`dask worker ADDRESS"
                     f"{' --resources ...' if resources else ''}`).")


def _prefetch_model(args: argparse.Namespace, console: Any) -> None:
    """Download a registry model here once, so that workers sharing the cache folder do not all fetch it."""
    from .checkpoints import is_cached, registry_names, resolve_checkpoint, tqdm_progress

    if args.model in registry_names() and not is_cached(args.model):
        console.info(f"downloading {args.model} for the workers...")
        with tqdm_progress(f"downloading {args.model}") as progress:
            resolve_checkpoint(args.model, progress=None if args.quiet else progress)


def run_on_cluster(jobs: list[Job], args: argparse.Namespace, console: Any, summary: BatchSummary) -> int:
    """Run the stacks that are not skipped as Dask tasks; fill ``summary``; returns the exit status."""
    from tqdm import tqdm

    todo = []
    for job in jobs:
        note = skip_note(job, args.overwrite)
        if note:
            console.note(note)
            summary.add(job, "skipped")
        else:
            todo.append(job)
    if not todo:
        return 0
    import_distributed()
    _prefetch_model(args, console)
    options = {k: v for k, v in vars(args).items() if k != "func"}
    options["quiet"] = True  # no bars in worker processes: the client shows one bar of stacks
    failed: list[tuple[Job, dict[str, Any]]] = []
    with cluster_client(args, console) as client:
        import distributed

        futures = {client.submit(segment_stack, job, options, key=f"napari-sam2-{job.stack.name}-{uuid.uuid4().hex}",
                                 retries=RETRIES, resources=args.resources, pure=False): job for job in todo}
        finished = False
        try:
            with tqdm(total=len(todo), desc="stacks", unit="stack", file=sys.stderr, disable=args.quiet) as bar:
                for future in distributed.as_completed(futures):
                    job = futures[future]
                    record = _result(future, args.debug)
                    err = record["error"]
                    if isinstance(err, Sam2Error) and not isinstance(err, (InputError, PromptError)):
                        summary.add(job, "failed", seconds=record["seconds"], worker=record["worker"], error=str(err))
                        raise err  # a model / device / output problem: every stack would fail (as in-process)
                    with tqdm.external_write_mode(file=sys.stderr):
                        _report(job, record, args, console, summary)
                    if record["status"] == "failed":
                        failed.append((job, record))
                    bar.update(1)
            finished = True
        finally:
            if not finished:
                client.cancel(list(futures))
                if args.scheduler is None:  # our workers are stopped with the cluster: nothing runs them now
                    pending = [j for f, j in futures.items() if f.status != "finished"]
                    _after_close(client, pending)
    order = {job.stack: i for i, job in enumerate(jobs)}
    failed.sort(key=lambda item: order[item[0].stack])
    return failed[0][1].get("code", 1) if failed else 0


def _after_close(client: Any, jobs: list[Job]) -> None:
    """Stop the local workers now (a closing worker would finish its stack first: minutes, past a
    scheduler's grace period), then remove what they left of unfinished stacks."""
    try:
        for pid in client.run(os.getpid).values():
            os.kill(pid, signal.SIGKILL)
        client.cluster.close()
    except Exception:
        pass  # already gone
    for job in jobs:
        remove_temps(job)


def _result(future: Any, debug: bool) -> dict[str, Any]:
    """The task's record, or a failed one when the task itself died (its worker killed every try, a bug)."""
    try:
        return future.result()
    except Exception as exc:
        if type(exc).__name__ == "KilledWorker":
            why = "its worker process died on every try (out of memory? killed?)"
        else:
            why = f"unexpected {type(exc).__name__}: {exc} (run with --debug and report it)"
        return {"status": "failed", "error": why, "code": 1, "worker": "", "result": None, "messages": [],
                "seconds": None, "died": True, "traceback": "".join(traceback.format_exception(exc)) if debug else ""}


def _report(job: Job, record: dict[str, Any], args: argparse.Namespace, console: Any,
            summary: BatchSummary) -> None:
    for kind, line in record["messages"]:
        getattr(console, kind)(line)
    if record.get("died"):
        remove_temps(job)  # no copy of the task runs any more
    if record["status"] == "done":
        console.info(record["result"].line)
        summary.add(job, "done", seconds=record["seconds"], worker=record["worker"], result=record["result"])
        return
    error = str(record["error"])
    if record.get("traceback"):
        console.note(record["traceback"].rstrip())
    console.error(f"{job.stack.name}: {error}")
    summary.add(job, "failed", seconds=record["seconds"], worker=record["worker"], error=error)
