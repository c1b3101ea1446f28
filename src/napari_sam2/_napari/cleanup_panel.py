"""The panel's "Clean-up" group (Qt side): the steps of :class:`~napari_sam2.engine.cleanup.Cleanup`.

Every step is off by default (SAM 2's own hole filling already ran on each mask). "Clean up all
frames" / "This frame" run :class:`~.cleanup_jobs.CleanupJobs` on the output labels as one undo
step (Ctrl+Z in the Labels layer takes it back); the group only turns its controls into a Cleanup.
"""

from __future__ import annotations

from typing import Any

from qtpy.QtWidgets import QCheckBox, QFormLayout, QGroupBox, QPushButton, QSpinBox

from ..engine.cleanup import Cleanup
from .cleanup_jobs import CleanupJobs
from .ui import _row


def _px(tip: str, hi: int = 10**9) -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(0, hi)
    spin.setSpecialValueText("off")
    spin.setToolTip(tip)
    return spin


class CleanupPanel(QGroupBox):
    """Fill holes, remove islands, keep the largest piece, open, close, drop one-frame flickers."""

    def __init__(self, panel: Any, on_changed: Any = None) -> None:
        super().__init__("Clean-up")
        self.panel = panel
        self.on_changed = on_changed  # e.g. the object panel's refresh
        self.jobs = CleanupJobs(panel.controller, on_done=self._done)
        form = QFormLayout(self)
        self.fill_holes = _px("Fill holes of each object up to this area (pixels).")
        self.min_island = _px("Remove pieces of an object smaller than this area (pixels).")
        form.addRow("Fill holes up to", _row(self.fill_holes, self._label("px; remove islands below"),
                                             self.min_island))
        self.open_radius = _px("Morphological opening with a disk of this radius (removes spurs and specks).", 50)
        self.close_radius = _px("Morphological closing with a disk of this radius (bridges thin gaps).", 50)
        form.addRow("Open radius", _row(self.open_radius, self._label("close radius"), self.close_radius))
        self.keep_largest = QCheckBox("keep largest piece")
        self.drop_flicker = QCheckBox("drop one-frame flickers")
        self.drop_flicker.setToolTip("Remove an object from a frame where it is absent on both neighbours "
                                     "(all frames only).")
        form.addRow(_row(self.keep_largest, self.drop_flicker))
        self.all_btn = QPushButton("Clean up all frames")
        self.frame_btn = QPushButton("This frame")
        for btn in (self.all_btn, self.frame_btn):
            btn.setToolTip("Replaces the output labels by their cleaned version (one undo step: Ctrl+Z).")
        form.addRow(_row(self.all_btn, self.frame_btn))
        self.all_btn.clicked.connect(lambda *_: self.run(all_frames=True))
        self.frame_btn.clicked.connect(lambda *_: self.run(all_frames=False))

    @staticmethod
    def _label(text: str) -> Any:
        from qtpy.QtWidgets import QLabel

        return QLabel(text)

    def cleanup(self) -> Cleanup:
        """The controls as a Cleanup."""
        return Cleanup(fill_holes=self.fill_holes.value(), min_island=self.min_island.value(),
                       keep_largest=self.keep_largest.isChecked(), open_radius=self.open_radius.value(),
                       close_radius=self.close_radius.value(), drop_flicker=self.drop_flicker.isChecked())

    def run(self, all_frames: bool = True) -> bool:
        """Clean the output labels; False when refused (no labels, nothing set)."""
        key = None if all_frames else tuple(self.panel.view.view_key())
        return self.jobs.run(self.cleanup(), self.panel.axis, key)

    def _done(self, changed: int, cancelled: bool) -> None:
        what = "Clean-up cancelled" if cancelled else "Clean-up done"
        self.panel._status(f"{what}: {changed} frame{'s' if changed != 1 else ''} changed "
                           f"({self.cleanup().describe()}); Ctrl+Z in the labels layer undoes it.")
        if self.on_changed is not None:
            self.on_changed()
