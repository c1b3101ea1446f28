"""The panel remembers its settings across openings (and napari sessions): a panel helper.

Model (a registry name or a checkpoint file), device, resolution, direction, Follow, Overwrite,
display contrast, the review threshold and Live's skipping are written to ``settings.json``
(:mod:`.settings_store`) whenever the user changes one, and set back when a panel opens. Only what
the user changed is stored: on a computer without a GPU the resolution defaults to 512 (the
"Runs on" line says so) until one is chosen. An injected model (``use_model``) is never stored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .settings_store import load_settings, save_settings
from .status import CPU_NOTE, device_text
from .ui import LOAD_FILE

CPU_RESOLUTION = 512


def _combo_text(combo: Any) -> Any:
    return combo.currentText()


def _set_combo_text(combo: Any, value: Any) -> None:
    idx = combo.findText(str(value))
    if idx >= 0:
        combo.setCurrentIndex(idx)


def _set_combo_data(combo: Any, value: Any) -> None:
    idx = next((i for i in range(combo.count()) if combo.itemData(i) == value), -1)
    if idx >= 0:
        combo.setCurrentIndex(idx)


class PanelMemory:
    """Sets the remembered settings on ``panel`` (after its handlers connect, so they see them), then saves changes."""

    def __init__(self, panel: Any) -> None:
        self.panel = panel
        self.values = load_settings()
        p = panel
        #: key -> (control, signal, read, write)
        self.fields: dict[str, tuple[Any, Any, Any, Any]] = {
            "device": (p.device_combo, p.device_combo.currentIndexChanged, _combo_text, _set_combo_text),
            "resolution": (p.size_combo, p.size_combo.currentIndexChanged, lambda c: c.currentData(), _set_combo_data),
            "direction": (p.direction_combo, p.direction_combo.currentIndexChanged, _combo_text, _set_combo_text),
            "follow": (p.follow_check, p.follow_check.toggled, lambda c: c.isChecked(),
                       lambda c, v: c.setChecked(bool(v))),
            "overwrite": (p.overwrite_check, p.overwrite_check.toggled, lambda c: c.isChecked(),
                          lambda c, v: c.setChecked(bool(v))),
            "contrast": (p.contrast_check, p.contrast_check.toggled, lambda c: c.isChecked(),
                         lambda c, v: c.setChecked(bool(v))),
            "threshold": (p.threshold_spin, p.threshold_spin.valueChanged, lambda c: float(c.value()),
                          lambda c, v: c.setValue(float(v))),
            "live_skip": (p.live_skip_check, p.live_skip_check.toggled, lambda c: c.isChecked(),
                          lambda c, v: c.setChecked(bool(v))),
        }
        self.apply()
        for key, (control, signal, read, _w) in self.fields.items():
            signal.connect(lambda *_, key=key, control=control, read=read: self.remember(key, read(control)))
        p.model_combo.currentIndexChanged.connect(lambda *_: self.remember_model())
        p.device_combo.currentIndexChanged.connect(lambda *_: self.show_device())

    # ---- opening ---------------------------------------------------------------------------------
    def apply(self) -> None:
        """Set the remembered values (unknown or stale ones are skipped); the CPU default otherwise."""
        for key, (control, _s, _r, write) in self.fields.items():
            if key in self.values:
                try:
                    write(control, self.values[key])
                except (TypeError, ValueError):  # a hand-edited file: keep the default
                    pass
        self._apply_model(self.values.get("model"))
        device = device_text(self.panel.device_combo.currentText())
        self.cpu_default = "resolution" not in self.values and device == "cpu"
        if self.cpu_default:
            _set_combo_data(self.panel.size_combo, CPU_RESOLUTION)
        self.show_device()

    def _apply_model(self, model: Any) -> None:
        combo = self.panel.model_combo
        if not isinstance(model, str) or not model or model == LOAD_FILE:
            return
        idx = combo.findData(model)
        if idx < 0 and Path(model).is_file():  # a checkpoint file chosen before, still there
            combo.insertItem(combo.count() - 1, model, model)
            idx = combo.count() - 2
        if idx >= 0:
            combo.setCurrentIndex(idx)
            self.panel._model_index = idx

    def show_device(self) -> None:
        """The "Runs on" line: the device the choice resolves to (and the CPU default's note)."""
        text = device_text(self.panel.device_combo.currentText())
        if text == "cpu" and self.cpu_default and self.panel.size_combo.currentData() == CPU_RESOLUTION:
            text = f"cpu: {CPU_NOTE}"
        self.panel.device_label.setText(text)

    # ---- changes ---------------------------------------------------------------------------------
    def remember(self, key: str, value: Any) -> None:
        if key not in self.values or self.values[key] != value:
            self.values[key] = value
            save_settings(self.values)
        if key == "resolution":
            self.show_device()

    def remember_model(self) -> None:
        data = self.panel.model_combo.currentData()
        if isinstance(data, str) and data != LOAD_FILE:  # an injected model object is not stored
            self.remember("model", data)
