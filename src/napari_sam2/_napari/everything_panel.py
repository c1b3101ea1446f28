"""The panel's "Segment everything" group (Qt side): filters, generator density and tracking options.

It only translates controls into an :class:`~.everything_jobs.EverythingSettings` and calls
:class:`~.everything_jobs.EverythingJobs` (Qt-free). "Find new objects every N frames", "End objects
absent for K frames" and "Divisions" change what Propagate does (forward only): the widget asks
:meth:`EverythingBinding.propagate` first. The object panel (:mod:`.object_panel`) and the clean-up
group (:mod:`.cleanup_panel`) sit below it.
"""

from __future__ import annotations

from typing import Any

from qtpy.QtWidgets import QCheckBox, QFormLayout, QGroupBox, QPushButton, QSpinBox

from .cleanup_panel import CleanupPanel
from .everything_jobs import EverythingJobs, EverythingSettings
from .object_panel import ObjectPanel
from .ui import _row


def _spin(lo: int, hi: int, value: int, tip: str, special: str | None = None) -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(lo, hi)
    spin.setValue(value)
    spin.setToolTip(tip)
    if special:
        spin.setSpecialValueText(special)
    return spin


class EverythingBinding(QGroupBox):
    """Segment everything on the current frame; the tracking options of Propagate."""

    def __init__(self, panel: Any) -> None:
        super().__init__("Segment everything")
        self.panel = panel
        self.jobs = EverythingJobs(panel.controller)
        #: more MaskGenerator keywords (console, tests), e.g. {"pred_iou_thresh": 0.5}
        self.extra_generator_settings: dict[str, Any] = {}
        form = QFormLayout(self)
        self.min_area = _spin(0, 2**30, 0, "Drop masks smaller than this (pixels).")
        self.max_area = _spin(0, 2**30, 0, "Drop masks larger than this (pixels); 0 = no limit.", "no limit")
        form.addRow("Area", _row(self.min_area, self.max_area))
        self.drop_border = QCheckBox("drop border")
        self.drop_border.setToolTip("Drop masks touching the image border (cells cut by the field of view).")
        self.drop_nested = QCheckBox("drop nested")
        self.drop_nested.setToolTip("Drop masks that contain smaller kept masks (a clump around several cells).")
        form.addRow(_row(self.drop_border, self.drop_nested))
        self.max_objects = _spin(1, 100_000, 1000, "Keep at most this many masks (the best predicted IoU first).")
        self.points = _spin(1, 128, 32, "Points per side of the generator's grid: more finds smaller objects, "
                                        "and costs about the square of it.")
        form.addRow("Max objects", _row(self.max_objects, self._label("points per side"), self.points))
        self.segment_btn = QPushButton("Segment everything on this frame")
        self.segment_btn.setToolTip("Every mask SAM 2's automatic mask generator finds (and the filters keep) "
                                    "becomes an object; masks over existing objects are skipped.")
        form.addRow(self.segment_btn)
        self.discover = _spin(0, 100_000, 0, "Propagate (forward) runs the generator every N frames; masks no track "
                                             "covers become new objects there. 0 = off.", "off")
        form.addRow("Find new objects every", _row(self.discover, self._label("frames")))
        self.end_absent = _spin(0, 100_000, 0, "Propagate (forward) stops tracking an object absent this many "
                                               "frames in a row. 0 = off.", "off")
        form.addRow("End objects absent for", _row(self.end_absent, self._label("frames")))
        self.divisions = QCheckBox("Divisions (an object that splits in two gets two daughters)")
        form.addRow(self.divisions)
        self.segment_btn.clicked.connect(self.segment)
        self.objects = ObjectPanel(panel, self.jobs)
        self.jobs.on_changed = self.objects.schedule_refresh
        layout = panel.layout()
        at = max(layout.indexOf(panel.status_label), 0)
        layout.insertWidget(at, self)
        layout.insertWidget(at + 1, self.objects)
        self.cleanup = CleanupPanel(panel, self.objects.schedule_refresh)
        layout.insertWidget(at + 2, self.cleanup)

    @staticmethod
    def _label(text: str) -> Any:
        from qtpy.QtWidgets import QLabel

        return QLabel(text)

    def settings(self) -> EverythingSettings:
        """The controls as settings."""
        return EverythingSettings(
            min_area=int(self.min_area.value()), max_area=int(self.max_area.value()) or None,
            drop_border=self.drop_border.isChecked(), drop_nested=self.drop_nested.isChecked(),
            max_objects=int(self.max_objects.value()),
            generator_settings={"points_per_side": int(self.points.value()), **self.extra_generator_settings},
            discover_every=int(self.discover.value()), end_after_absent=int(self.end_absent.value()),
            divisions=self.divisions.isChecked())

    def segment(self) -> bool:
        """Segment everything on the frame shown."""
        panel = self.panel
        if not panel.check_image():
            return False
        panel.controller.prepare()
        return self.jobs.segment(panel.view.view_key(), self.settings())

    def propagate(self, layer_ids: Any) -> bool | None:
        """Propagate with the tracking options when one is on (None: not on, an ordinary propagation)."""
        settings = self.settings()
        if not settings.tracking:
            return None
        panel = self.panel
        direction = panel.direction_combo.currentText()
        return self.jobs.propagate(panel.view.view_key(), settings, direction, panel.stop_arg(direction), layer_ids)
