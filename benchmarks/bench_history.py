"""Cost of keeping every tracked frame (exact corrections anywhere): bytes per frame, and the time
to correct a frame in the middle and re-propagate from it, with the history in RAM, on disk, or
all on the device (what the official predictor does).

    python benchmarks/bench_history.py [--frames 80] [--repropagate 20]

Uses the miniature random-weights test model (256 px) on a 64 x 64 uint8 stack; the per-frame byte
counts for the real image sizes are computed from the stored tensors' shapes.

    python benchmarks/bench_history.py --widget [--frames 200] [--size 512] [--objects 2] [--propagations 3]

The widget's undo history instead: a real napari viewer (virtual X display when none is set) on a
synthetic (frames, size, size) uint8 stack of drifting disks, the SAM 2 widget on the test model,
``--objects`` clicked objects propagated over every frame, then again from clicks moved a few pixels
(each propagation is one undo step). Prints the process RSS and the bytes the output Labels layer's
undo history holds after each propagation, then checks that one undo restores the labels exactly.
"""

from __future__ import annotations

import argparse
import hashlib
import time

import numpy as np
import torch


def bytes_per_object_frame(image_size: int) -> int:
    side = image_size // 4
    low_res = side * side * 4  # fp32 mask logits
    maskmem = 64 * (image_size // 16) ** 2 * 2  # bf16 memory features
    return low_res + maskmem + 256 * 4 + 4 + 16  # pointer, score, record header


def run(frames: np.ndarray, mode: str, repropagate: int) -> dict:
    from napari_sam2 import VideoSession
    from napari_sam2.engine.memory_bank import ObjectTrack
    from napari_sam2.model.testing import random_model

    model = random_model()
    original = ObjectTrack.prune
    if mode == "device":
        ObjectTrack.prune = lambda self, position, max_cond: None
    try:
        ram = {"ram": 2**30, "disk": 0, "device": 2**30}[mode]
        s = VideoSession(model, frames, history_ram_bytes=ram)
        s.add_points(0, 1, [[32, 20]], [1])
        t0 = time.perf_counter()
        n = sum(1 for _ in s.propagate())
        track_s = time.perf_counter() - t0
        mid = len(frames) // 2
        t0 = time.perf_counter()
        s.add_points(mid, 1, [[32, 24], [5, 5]], [1, 0])
        click_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        m = sum(1 for _ in s.propagate(start=mid, stop=mid + repropagate))
        repro_s = time.perf_counter() - t0
        out = {"mode": mode, "track_ms_per_frame": 1e3 * track_s / n, "correction_click_ms": 1e3 * click_s,
               "repropagate_ms_per_frame": 1e3 * repro_s / m, "device_mib": s.state_bytes / 2**20,
               "ram_mib": s.history_bytes["ram"] / 2**20, "disk_mib": s.history_bytes["disk"] / 2**20}
        s.close()
        return out
    finally:
        ObjectTrack.prune = original


def widget_run(frames: int, size: int, objects: int, propagations: int) -> None:
    """RSS and undo-history bytes of the widget's output layer over ``propagations`` propagations."""
    import _widget_run as R

    d = R.display()
    try:
        stack = R.moving_disks(frames, size, objects)
        viewer, widget = R.open_viewer(stack)
        widget.follow_check.setChecked(False)
        budget = getattr(widget.controller.output, "budget_bytes", None)
        print(f"{frames} frames of {size} x {size} uint8, {objects} objects, test model (256 px); undo budget "
              f"{'none (unbounded)' if budget is None else f'{budget / 2**20:.0f} MiB'}\n")
        print("| after | RSS (MiB) | undo history (MiB) | undo steps | changed pixels | s |")
        print("|---|---|---|---|---|---|")
        print(f"| viewer open | {R.rss_mib():.0f} | 0 | 0 | 0 | |", flush=True)
        for p in range(propagations):
            if p:
                widget.reset_session()
                for layer in (widget.points_layer, widget.boxes_layer):
                    layer.data = []
                R.idle(widget)
            R.click_objects(widget, size, objects, shift=3.0 * p)
            out = widget.guards.output_layer(False)
            before = out.data.copy()
            secs = R.propagate(widget, frames)
            changed = int((out.data != before).sum())
            digest = hashlib.sha1(before.tobytes()).hexdigest()
            del before
            print(f"| propagation {p + 1} | {R.rss_mib():.0f} | {R.undo_bytes(out) / 2**20:.1f} | "
                  f"{len(out._undo_history)} | {changed:,} | {secs:.0f} |", flush=True)
        after = hashlib.sha1(out.data.tobytes()).hexdigest()
        out.undo()
        undone = hashlib.sha1(out.data.tobytes()).hexdigest() == digest
        out.redo()
        redone = hashlib.sha1(out.data.tobytes()).hexdigest() == after
        print(f"\nundo of the last propagation restores the labels exactly: {undone}; redo re-applies it: {redone}")
        viewer.close()
    finally:
        if d is not None:
            d.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--frames", type=int, default=80)
    ap.add_argument("--repropagate", type=int, default=20)
    ap.add_argument("--widget", action="store_true", help="measure the widget's undo history instead")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--objects", type=int, default=2)
    ap.add_argument("--propagations", type=int, default=3)
    args = ap.parse_args()
    if args.widget:
        widget_run(args.frames, args.size, args.objects, args.propagations)
        return
    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:64, :64]
    frames = np.stack([(40 + 150 * (((yy - 32) ** 2 + (xx - 20 - 10 * np.sin(t / 20)) ** 2) < 100)
                        + rng.normal(0, 8, (64, 64))).clip(0, 255).astype(np.uint8) for t in range(args.frames)])
    print("| image size | bytes per object and frame (RAM or disk) | 1,000 frames x 1 object |")
    print("|---|---|---|")
    for size in (256, 512, 1024):
        b = bytes_per_object_frame(size)
        print(f"| {size} | {b / 1024:.0f} KiB | {b * 1000 / 2**20:.0f} MiB |")
    print("\n| history | tracking (ms/frame) | correction click (ms) | re-propagation from the middle (ms/frame) "
          "| device (MiB) | RAM (MiB) | spill file (MiB) |")
    print("|---|---|---|---|---|---|---|")
    for mode in ("device", "ram", "disk"):
        r = run(frames, mode, args.repropagate)
        print(f"| {mode} | {r['track_ms_per_frame']:.0f} | {r['correction_click_ms']:.0f} | "
              f"{r['repropagate_ms_per_frame']:.0f} | {r['device_mib']:.2f} | {r['ram_mib']:.2f} | "
              f"{r['disk_mib']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
