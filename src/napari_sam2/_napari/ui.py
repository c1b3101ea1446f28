"""The controls of the SAM 2 dock widget, laid out; no behaviour (that is in ``widget.py``)."""

from __future__ import annotations

from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

DEVICES = ("auto", "cpu", "cuda", "mps")
RESOLUTIONS = (("full (1024)", None), ("768", 768), ("512 (laptop)", 512), ("384", 384), ("256", 256))
DIRECTIONS = ("forward", "backward", "both")
LOAD_FILE = "Load checkpoint file..."
NEW_OUTPUT = "(new layer)"
NO_MASKS = "(none)"
FALLBACK_MODELS = ("sam2.1_hiera_tiny", "sam2.1_hiera_small", "sam2.1_hiera_base_plus", "sam2.1_hiera_large")


def _row(*widgets: QWidget) -> QWidget:
    box = QWidget()
    lay = QHBoxLayout(box)
    lay.setContentsMargins(0, 0, 0, 0)
    for w in widgets:
        lay.addWidget(w)
    return box


class Sam2Panel(QWidget):
    """All controls as attributes; ``Sam2Widget`` connects them."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        outer = QVBoxLayout(self)

        # ---- what to segment, with which model ----
        setup = QGroupBox("Setup")
        form = QFormLayout(setup)
        self.image_combo = QComboBox()
        self.image_combo.setToolTip("The image stack to segment (time-lapse, Z stack, video clip).")
        self.model_combo = QComboBox()
        self.model_combo.setToolTip("SAM 2.1 model: tiny is fastest (CPU / laptop); large is most accurate.")
        self.device_combo = QComboBox()
        self.device_combo.addItems(DEVICES)
        self.device_combo.setToolTip("auto = CUDA GPU if present, else Apple MPS, else CPU.")
        self.size_combo = QComboBox()
        for text, size in RESOLUTIONS:
            self.size_combo.addItem(text, size)
        self.size_combo.setToolTip(
            "Internal resolution of the model (laptop mode): lower is faster and needs less memory; "
            "masks still come back at the image's resolution."
        )
        self.axis_combo = QComboBox()
        self.axis_combo.setToolTip("The axis to propagate along (time or Z).")
        self.output_combo = QComboBox()
        self.output_combo.setToolTip("Labels layer receiving the masks; other label ids in it are preserved.")
        self.mask_combo = QComboBox()
        self.mask_combo.setToolTip("Optional Labels layer (e.g. Cellpose) whose labels on a frame become mask prompts.")
        form.addRow("Image", self.image_combo)
        form.addRow("Model", self.model_combo)
        self.model_note_label = QLabel("")  # stays while the demo model stands in for an official one
        self.model_note_label.setWordWrap(True)
        self.model_note_label.setStyleSheet("color: #e0a030;")
        self.model_note_label.setVisible(False)
        form.addRow(self.model_note_label)
        form.addRow("Device", _row(self.device_combo, QLabel("resolution"), self.size_combo))
        self.device_label = QLabel("")  # the device "auto" resolves to here, and the CPU default's note
        self.device_label.setWordWrap(True)
        form.addRow("Runs on", self.device_label)
        self.contrast_check = QCheckBox("Use display contrast")
        self.contrast_check.setToolTip(
            "16-bit / float images: give SAM 2 the intensities as the layer shows them (its contrast limits) "
            "instead of the stack's 0.5-99.5 % range. Changing it restarts the session (prompts are kept)."
        )
        form.addRow("Propagate along", _row(self.axis_combo, self.contrast_check))
        form.addRow("Output labels", self.output_combo)
        form.addRow("Mask prompts", self.mask_combo)
        self.open_session_btn = QPushButton("Open session...")
        self.open_session_btn.setToolTip("Replay a session file (*.sam2.json) on this image: masks and prompts.")
        self.save_session_btn = QPushButton("Save session...")
        self.save_session_btn.setToolTip("Save every prompt and propagation as a session file (*.sam2.json).")
        form.addRow("Session", _row(self.open_session_btn, self.save_session_btn))
        outer.addWidget(setup)

        # ---- prompts ----
        prompts = QGroupBox("Prompts: click objects, draw boxes")
        pform = QFormLayout(prompts)
        self.obj_spin = QSpinBox()
        self.obj_spin.setRange(1, 2**31 - 1)
        self.obj_spin.setToolTip("Object id of the next click or box (= its label value).")
        self.new_obj_btn = QPushButton("New object")
        self.new_obj_btn.setToolTip("Next free id: larger than every id in the output labels and the session.")
        pform.addRow("Object id", _row(self.obj_spin, self.new_obj_btn))
        self.negative_check = QCheckBox("Negative clicks (n)")
        self.negative_check.setToolTip("Next clicks mark background (red) instead of the object (green). Key: n")
        self.candidate_btn = QPushButton("Next candidate (c)")
        self.candidate_btn.setToolTip("Cycle the alternative masks SAM 2 proposes for a single click. Key: c")
        pform.addRow(_row(self.negative_check, self.candidate_btn))
        self.masks_btn = QPushButton("Use mask prompts on this frame")
        self.masks_btn.setToolTip("Each label of the 'Mask prompts' layer on the current frame becomes an object.")
        pform.addRow(self.masks_btn)
        outer.addWidget(prompts)

        # ---- propagation ----
        prop = QGroupBox("Propagate from the current frame")
        vform = QFormLayout(prop)
        self.direction_combo = QComboBox()
        self.direction_combo.addItems(DIRECTIONS)
        vform.addRow("Direction", self.direction_combo)
        self.range_check = QCheckBox("only frames")
        self.range_check.setToolTip("Limit the propagation to this range of frames (inclusive).")
        self.first_spin = QSpinBox()
        self.last_spin = QSpinBox()
        for spin in (self.first_spin, self.last_spin):
            spin.setRange(0, 0)
            spin.setEnabled(False)
        vform.addRow(_row(self.range_check, self.first_spin, QLabel("to"), self.last_spin))
        self.overwrite_check = QCheckBox("Overwrite other labels")
        self.overwrite_check.setToolTip("Off: pixels holding other label ids are never painted over.")
        self.follow_check = QCheckBox("Follow")
        self.follow_check.setChecked(True)
        self.follow_check.setToolTip("Move the frame slider along with the propagation.")
        vform.addRow(_row(self.overwrite_check, self.follow_check))
        self.live_check = QCheckBox("Live")
        self.live_check.setToolTip("The image grows while it is acquired: Propagate tracks each new frame as it "
                                   "arrives, and the output labels grow with it (forward, along the first axis).")
        self.live_skip_check = QCheckBox("skip to the newest frame when behind")
        self.live_skip_check.setChecked(True)
        self.live_skip_check.setToolTip("Live: when frames arrive faster than the model runs, track the newest "
                                        "(the skipped ones are counted); off: track every frame, however late.")
        vform.addRow(_row(self.live_check, self.live_skip_check))
        self.propagate_btn = QPushButton("Propagate")
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setEnabled(False)
        vform.addRow(_row(self.propagate_btn, self.cancel_btn))
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 100)
        self.progress_bar.setValue(0)
        self.progress_label = QLabel("")
        vform.addRow(self.progress_bar)
        vform.addRow(self.progress_label)
        outer.addWidget(prop)

        # ---- review ----
        review = QGroupBox("Frames to review (double-click to go there)")
        rlay = QVBoxLayout(review)
        self.threshold_spin = QDoubleSpinBox()
        self.threshold_spin.setRange(0.0, 1.0)
        self.threshold_spin.setSingleStep(0.05)
        self.threshold_spin.setValue(0.7)
        self.threshold_spin.setToolTip("List frames where an object's presence score is below this.")
        rlay.addWidget(_row(QLabel("score below"), self.threshold_spin))
        self.lost_list = QListWidget()
        self.lost_list.setMaximumHeight(140)
        rlay.addWidget(self.lost_list)
        self.reset_btn = QPushButton("Reset session")
        self.reset_btn.setToolTip("Forget the model's memory; prompts in the layers are sent again on the next edit.")
        rlay.addWidget(self.reset_btn)
        outer.addWidget(review)

        self.status_label = QLabel("Open an image stack to start.")
        self.status_label.setWordWrap(True)
        # long messages (an offline download names a URL and a folder) can be selected and copied
        self.status_label.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse | Qt.TextInteractionFlag.TextSelectableByKeyboard
        )
        outer.addWidget(self.status_label)
        outer.addStretch(1)

    # ---- state reflected in the controls -------------------------------------------------------
    def set_running(self, running: bool, cancellable: bool = True) -> None:
        """Disable what must not change during a propagation or a model load."""
        for w in (
            self.image_combo,
            self.model_combo,
            self.device_combo,
            self.size_combo,
            self.axis_combo,
            self.output_combo,
            self.propagate_btn,
            self.reset_btn,
            self.masks_btn,
            self.candidate_btn,
            self.open_session_btn,
            self.save_session_btn,
        ):
            w.setEnabled(not running)
        self.cancel_btn.setEnabled(running and cancellable)
