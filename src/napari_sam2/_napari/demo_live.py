"""``napari-sam2 demo-live``: live tracking in one command, no microscope needed.

A synthetic fluorescence acquisition (the cells sample's generator, ``synthetic.make_cells_timelapse``)
is played into an Image layer at ``fps`` frames a second, the way acquisition plugins do it: the
layer's data is replaced by a longer array at each frame. The SAM 2 widget is docked with Live on
and a click on the largest cell of the first frame, and Propagate pressed: the output Labels layer
grows with the stack, and the status line shows frames behind, skipped and the latency.

Model: the named one, else ``sam2.1_hiera_tiny`` when its checkpoint is cached, else the miniature
random-weights model (offline, masks meaningless; the demo says so): :func:`pick_model`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .synthetic import make_cells_timelapse

DEFAULT_MODEL = "sam2.1_hiera_tiny"
RANDOM_NOTE = ("no SAM 2 checkpoint is cached, so the demo runs the miniature random-weights model (offline; the "
               "masks are meaningless). For real tracking: napari-sam2 demo-live --model sam2.1_hiera_tiny "
               "(downloaded once).")


def pick_model(name: str | None, device: str = "auto", image_size: int | None = None) -> tuple[Any, str, str]:
    """The demo's model, its name and one line saying which it is (and why)."""
    from ..api import TEST_MODEL, get_model
    from ..checkpoints import is_cached

    note = ""
    if name is None:
        try:
            cached = is_cached(DEFAULT_MODEL)
        except Exception:  # noqa: BLE001 - a broken registry: fall back to the offline model
            cached = False
        name, note = (DEFAULT_MODEL, "cached checkpoint") if cached else (TEST_MODEL, RANDOM_NOTE)
    size = image_size if image_size is not None or name == TEST_MODEL else 512  # 512: keeps up on a CPU
    model = get_model(name, device=device, image_size=size)
    what = f"Model: {name} at {model.image_size} px on {next(model.parameters()).device}"
    return model, name, f"{what} ({note})" if note else what


def first_cell(labels: np.ndarray) -> tuple[int, list[float]]:
    """The largest cell of a (Y, X) label frame and a point inside it (its centroid, (row, col))."""
    ids, counts = np.unique(labels[labels > 0], return_counts=True)
    cell = int(ids[np.argmax(counts)])
    rows, cols = np.nonzero(labels == cell)
    return cell, [float(rows.mean()), float(cols.mean())]


@dataclass
class LiveDemo:
    """What :func:`start_demo` set up: the viewer, the acquisition layer, the widget and its player."""

    viewer: Any
    layer: Any
    widget: Any
    frames: np.ndarray
    model_text: str
    timer: Any = None
    played: int = 1
    done_callbacks: list = field(default_factory=list)

    @property
    def tracked(self) -> int:
        """The last frame tracked (-1: none yet)."""
        run = self.widget.live.run
        return run.stats.last if run is not None else -1

    def _tick(self) -> None:
        if self.played >= len(self.frames):
            self.timer.stop()
            return
        self.played += 1
        self.layer.data = self.frames[: self.played]  # a new, longer array: as acquisition plugins grow a layer

    def stop(self) -> None:
        if self.timer is not None:
            self.timer.stop()


def start_demo(viewer: Any = None, fps: float = 5.0, frames: int = 200, size: int = 256, model: Any = None,
               model_name: str = "demo model", model_text: str = "", seed: int = 0) -> LiveDemo:
    """Open (or use) a viewer, dock the widget with Live on and a click on the first frame's largest
    cell, press Propagate and start playing ``frames`` synthetic frames at ``fps``."""
    import napari
    from qtpy.QtCore import QTimer

    if model is None:
        model, model_name, model_text = pick_model(None)
    clip = make_cells_timelapse(n_frames=int(frames), size=int(size), seed=seed)
    viewer = viewer or napari.Viewer(title="napari-sam2 live demo")
    lo, hi = float(clip.image.min()), float(clip.image.max())
    layer = viewer.add_image(clip.image[:1], name="acquisition", colormap="gray", contrast_limits=(lo, hi))
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-sam2", "SAM 2")
    widget.reset_choices()
    widget.use_model(model, model_name)
    widget.contrast_check.setChecked(True)  # the acquisition's fixed display range, for every frame
    widget.live_check.setChecked(True)
    _cell, point = first_cell(clip.labels[0])
    widget.points_layer.add([[0, *point]])
    widget.propagate()
    demo = LiveDemo(viewer, layer, widget, clip.image, model_text)
    demo.timer = QTimer(widget)
    demo.timer.setInterval(max(int(1000 / max(float(fps), 0.1)), 1))
    demo.timer.timeout.connect(demo._tick)
    demo.timer.start()
    viewer.status = model_text
    return demo


def run_demo(fps: float = 5.0, frames: int = 200, size: int = 256, model_name: str | None = None,
             device: str = "auto", image_size: int | None = None, exit_when_done: bool = False,
             say: Any = print) -> dict[str, Any]:
    """The command: load the model, start the demo, run napari's event loop; returns a summary.

    ``exit_when_done``: close the viewer once every frame was played and tracked (or skipped).
    """
    import napari
    from qtpy.QtCore import QTimer

    model, name, text = pick_model(model_name, device, image_size)
    say(text)
    say(f"Playing {frames} synthetic frames at {fps:g} fps into the layer 'acquisition' (Live on).")
    demo = start_demo(None, fps, frames, size, model, name, text)
    if exit_when_done:
        check = QTimer(demo.widget)
        check.setInterval(100)

        def finish() -> None:
            if demo.played >= frames and demo.tracked >= frames - 1:
                check.stop()
                demo.widget.live_check.setChecked(False)
                QTimer.singleShot(200, demo.viewer.close)

        check.timeout.connect(finish)
        check.start()
    stats = demo.widget.live.run.stats if demo.widget.live.run is not None else None
    napari.run()
    summary = {"played": demo.played, "tracked": stats.tracked if stats else 0,
               "skipped": stats.skipped if stats else 0, "latency_s": stats.latency if stats else 0.0}
    say(f"Tracked {summary['tracked']} frames of {summary['played']} ({summary['skipped']} skipped); last latency "
        f"{1000 * summary['latency_s']:.0f} ms.")
    return summary
