"""The object panel (Qt side): the session's objects in a table, with their edits and Export.

Columns: id (with the colour swatch of the output layer's colormap), name (editable), frames covered,
frames lost, lineage (parent, daughters). Buttons act on the selected row: Select (the current object
of clicks), Clear on this frame, Delete, Hide / Show, Split here, Merge into (the object chosen in
the combo box), Export (labels TIFF + CSV, CTC, GEFF or TrackMate, each with the lineage; see
:mod:`.track_export`) and Tracks layer (centroid tracks with the divisions as graph). The rows are
:class:`~.objects.ObjectBook`'s and the edits :class:`~.object_jobs.ObjectJobs`' (both Qt-free); the table refreshes when a job ends or the output
labels change (at most every ``REFRESH_MS``, never while a job runs).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from qtpy.QtCore import Qt, QTimer
from qtpy.QtGui import QColor
from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QGroupBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from ..errors import Sam2Error
from .object_jobs import ObjectJobs
from .objects import ObjectBook, ObjectRow
from .track_export import FORMATS, export, tracks_layer
from .ui import _row

REFRESH_MS = 300
COLUMNS = ("id", "name", "frames", "lost", "lineage")
NO_SELECTION = "SAM 2: select an object in the object list first."


class ObjectPanel(QGroupBox):
    """The object list of one widget."""

    def __init__(self, panel: Any, everything: Any) -> None:
        super().__init__("Objects")
        self.panel = panel
        self.book = ObjectBook()
        self.jobs = ObjectJobs(panel.controller, everything)
        self.rows: list[ObjectRow] = []
        self._base_colormap: Any = None  # the output layer's colormap before anything was hidden
        self._watched: Any = None
        lay = QVBoxLayout(self)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.table.setMinimumHeight(120)  # about four rows, even in a crowded dock
        self.table.setMaximumHeight(180)
        lay.addWidget(self.table)
        self.select_btn = QPushButton("Select")
        self.select_btn.setToolTip("Make it the object of the next clicks and boxes.")
        self.clear_btn = QPushButton("Clear on this frame")
        self.delete_btn = QPushButton("Delete")
        self.hide_btn = QPushButton("Hide / show")
        lay.addWidget(_row(self.select_btn, self.clear_btn, self.delete_btn, self.hide_btn))
        self.split_btn = QPushButton("Split here")
        self.split_btn.setToolTip("Its separate parts on this frame become two daughter objects (lineage kept).")
        self.merge_combo = QComboBox()
        self.merge_combo.setToolTip("The object that absorbs the selected one.")
        self.merge_btn = QPushButton("Merge into")
        self.merge_btn.setToolTip("The selected object's mask on this frame joins the chosen one; it ends here.")
        lay.addWidget(_row(self.split_btn, self.merge_btn, self.merge_combo))
        self.format_combo = QComboBox()
        for fmt, (label, _filter) in FORMATS.items():
            self.format_combo.addItem(label, fmt)
        self.format_combo.setToolTip("labels TIFF + per-object CSV (as the command line writes), a Cell Tracking "
                                     "Challenge folder, a GEFF graph or TrackMate XML; each with the lineage.")
        self.export_btn = QPushButton("Export...")
        self.export_btn.setToolTip("Write the output labels and their lineage in the chosen format.")
        self.tracks_btn = QPushButton("Tracks layer")
        self.tracks_btn.setToolTip("Add a napari Tracks layer: each object's centroid per frame, divisions linked.")
        lay.addWidget(_row(self.format_combo, self.export_btn, self.tracks_btn))
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(REFRESH_MS)
        self._timer.timeout.connect(self.refresh)
        self.select_btn.clicked.connect(lambda *_: self.select())
        self.clear_btn.clicked.connect(lambda *_: self._act(lambda i: self.jobs.clear(self._key(), i)))
        self.delete_btn.clicked.connect(lambda *_: self.delete())
        self.hide_btn.clicked.connect(lambda *_: self._act(self.toggle_hidden))
        self.split_btn.clicked.connect(lambda *_: self._act(lambda i: self.jobs.split(self._key(), i)))
        self.merge_btn.clicked.connect(lambda *_: self.merge())
        self.export_btn.clicked.connect(lambda *_: self.export())
        self.tracks_btn.clicked.connect(lambda *_: self.add_tracks_layer())
        self.table.itemChanged.connect(self._renamed)

    # ---- reading -------------------------------------------------------------------------------
    def output_layer(self) -> Any:
        return self.panel.view.output(False)

    def _key(self) -> Any:
        return self.panel.view.view_key()

    def selected_id(self) -> int | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        return self.rows[rows[0].row()].obj_id if rows[0].row() < len(self.rows) else None

    def select_row(self, obj_id: int) -> None:
        """Select the row of ``obj_id`` in the table (tests, the console)."""
        for r, row in enumerate(self.rows):
            if row.obj_id == obj_id:
                self.table.selectRow(r)

    # ---- refreshing ----------------------------------------------------------------------------
    def schedule_refresh(self) -> None:
        self._timer.start()

    def refresh(self) -> None:
        """Rebuild the rows (later, when a job still runs)."""
        ctrl = self.panel.controller
        if ctrl.closed:
            return
        if ctrl.runner.busy or ctrl.runner.pending:
            self._timer.start()
            return
        layer = self.output_layer()
        self._watch(layer)
        keep = self.selected_id()
        self.rows = self.book.rows(ctrl, layer)
        self.table.blockSignals(True)
        self.table.setRowCount(len(self.rows))
        for r, row in enumerate(self.rows):
            idx = QTableWidgetItem(str(row.obj_id) + (" (hidden)" if row.hidden else ""))
            idx.setFlags(idx.flags() & ~Qt.ItemFlag.ItemIsEditable)
            rgba = self.colour(row.obj_id, layer)
            if rgba is not None:
                idx.setData(Qt.ItemDataRole.DecorationRole, QColor.fromRgbF(*(float(c) for c in rgba[:3]), 1.0))
            cells = [idx, QTableWidgetItem(row.name)] + [QTableWidgetItem(t) for t in
                                                         (str(row.covered), str(row.lost), row.lineage_text)]
            for c, item in enumerate(cells):
                if c > 1:
                    item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
                self.table.setItem(r, c, item)
        self.table.blockSignals(False)
        self.merge_combo.clear()
        for row in self.rows:
            self.merge_combo.addItem(f"{row.obj_id} {row.name}", row.obj_id)
        if keep is not None:
            self.select_row(keep)

    def _watch(self, layer: Any) -> None:
        if layer is self._watched:
            return
        if self._watched is not None:
            try:
                self._watched.events.labels_update.disconnect(self._changed)
            except (RuntimeError, TypeError, ValueError):
                pass
        self._watched, self._base_colormap = layer, None
        if layer is not None:
            layer.events.labels_update.connect(self._changed)

    def _changed(self, *_: Any) -> None:
        if not self._timer.isActive():
            self._timer.start()

    def colour(self, obj_id: int, layer: Any = None) -> Any:
        """The RGBA colour of ``obj_id`` in the output layer (its colormap before hiding)."""
        layer = layer if layer is not None else self.output_layer()
        if layer is None:
            return None
        cmap = self._base_colormap or layer.colormap
        return np.asarray(cmap.map(np.array([obj_id], dtype=layer.data.dtype)))[0]

    # ---- actions -------------------------------------------------------------------------------
    def _act(self, fn: Any) -> None:
        obj_id = self.selected_id()
        if obj_id is None:
            self.panel._say("warning", NO_SELECTION)
            return
        fn(obj_id)

    def select(self) -> None:
        """The selected object becomes the one clicks and boxes go to."""
        def pick(obj_id: int) -> None:
            self.panel.obj_spin.setValue(obj_id)
            layer = self.output_layer()
            if layer is not None:
                layer.selected_label = obj_id
            self.panel._status(f"Clicks and boxes now go to object {obj_id} ({self.book.name(obj_id)}).")

        self._act(pick)

    def delete(self) -> None:
        def go(obj_id: int) -> None:
            self._drop_prompts(obj_id)
            self.jobs.delete(obj_id)
            self.book.forget(obj_id)

        self._act(go)

    def merge(self) -> None:
        keep = self.merge_combo.currentData()
        self._act(lambda other: self.jobs.merge(self._key(), int(keep), other) if keep is not None
                  else self.panel._say("warning", NO_SELECTION))

    def toggle_hidden(self, obj_id: int) -> None:
        """Hide the object in the output layer (transparent colour), or show it again."""
        self.book.hidden ^= {int(obj_id)}
        layer = self.output_layer()
        if layer is not None:
            self.apply_hidden(layer)
        self.refresh()

    def apply_hidden(self, layer: Any) -> None:
        from napari.utils.colormaps import DirectLabelColormap

        if self._base_colormap is None:
            self._base_colormap = layer.colormap
        base = self._base_colormap
        if not self.book.hidden:
            layer.colormap = base
            return
        ids = sorted(set(self.book.frames) | {r.obj_id for r in self.rows} | self.book.hidden)
        colours = {i: np.asarray(base.map(np.array([i], dtype=layer.data.dtype)))[0] for i in ids}
        colours.update({i: np.zeros(4) for i in self.book.hidden})
        colours.update({0: np.zeros(4), None: np.zeros(4)})
        layer.colormap = DirectLabelColormap(color_dict=colours)

    def _drop_prompts(self, obj_id: int) -> None:
        """Remove the object's clicks and boxes from the prompt layers (else the next sync brings it back)."""
        for layer in (self.panel.points_layer, self.panel.boxes_layer):
            if layer is None or not len(layer.data) or "obj_id" not in layer.features:
                continue
            idx = set(np.flatnonzero(np.asarray(layer.features["obj_id"]) == obj_id).tolist())
            if idx:
                layer.selected_data = idx
                layer.remove_selected()

    def _renamed(self, item: QTableWidgetItem) -> None:
        if item.column() == 1 and item.row() < len(self.rows):
            self.book.rename(self.rows[item.row()].obj_id, item.text())

    def _ask(self, fmt: str) -> str:
        if fmt == "ctc":
            return QFileDialog.getExistingDirectory(self, "Export as a Cell Tracking Challenge folder")
        return QFileDialog.getSaveFileName(self, f"Export as {FORMATS[fmt][0]}", "", FORMATS[fmt][1])[0]

    def export(self, path: str | None = None, fmt: str | None = None) -> Any:
        """Write the output labels with their lineage in ``fmt`` (default: the combo's); asks where without
        ``path``. Returns the paths written (None when nothing was)."""
        layer = self.output_layer()
        if layer is None:
            self.panel._say("warning", "SAM 2: there are no output labels to export yet.")
            return None
        fmt = fmt or self.format_combo.currentData()
        asked = path is None  # the dialog confirmed replacing the file
        path = path or self._ask(fmt)
        if not path:
            return None
        session = self.panel.controller.session
        try:
            files = export(layer.data, path, fmt, session, getattr(session, "lineage", None), self.panel.axis,
                           overwrite=asked and fmt != "ctc")
        except (Sam2Error, OSError) as err:
            return self.panel.controller.report(err)
        self.panel._status(f"Exported {', '.join(p.name for p in files)}.")
        return files

    def add_tracks_layer(self) -> Any:
        """Add (or update) the "<output> tracks" Tracks layer; returns it (None when refused)."""
        layer = self.output_layer()
        if layer is None:
            self.panel._say("warning", "SAM 2: there are no output labels to make tracks of yet.")
            return None
        session = self.panel.controller.session
        try:
            data, graph = tracks_layer(layer.data, getattr(session, "lineage", None), self.panel.axis)
        except Sam2Error as err:
            return self.panel.controller.report(err)
        if not len(data):
            self.panel._say("info", "SAM 2: the output labels hold no objects yet: no tracks to show.")
            return None
        viewer, name = self.panel.viewer, f"{layer.name} tracks"
        if name in viewer.layers:
            viewer.layers.remove(name)
        tracks = viewer.add_tracks(data, graph=graph, name=name, scale=layer.scale, translate=layer.translate)
        self.panel._status(f"Tracks layer '{name}': {len(np.unique(data[:, 0]))} tracks, "
                           f"{len(graph)} daughters linked to their parent.")
        return tracks
