"""The review part of the panel, on the Qt-free :class:`~.review.ReviewModel` (the session's).

- the review list: one row per (object, range of doubtful frames), updated row by row from the
  model's changes (a frame of a propagation touches only the rows of its objects; a new threshold
  or a reset rebuilds the list once); double-click goes to the range's first frame and selects the object;
- "Next to review" (and Shift-N in the viewer): the next doubtful frame after the one shown, wrapping;
- :class:`Timeline`: one strip per object, bars as high as the presence score per frame (green,
  orange below the threshold, red absent, grey not computed), the threshold line and the current
  frame; a click goes to that frame and selects that object.
"""

from __future__ import annotations

import weakref
from bisect import bisect_left
from typing import Any

import numpy as np
from qtpy.QtCore import QPoint, Qt, Signal
from qtpy.QtGui import QColor, QImage, QPainter, QPen
from qtpy.QtWidgets import QListWidgetItem, QPushButton, QSizePolicy, QWidget

from . import layers as L
from .review import ABSENT, NOT_DONE, ReviewModel, TrackKey

NEXT_KEY = "Shift-N"
NOTHING = "Nothing to review at this threshold."
MARGIN = 26  # pixels left of the strips for the object ids
COLOURS = {"ok": (70, 170, 90), "low": (235, 150, 40), "absent": (200, 50, 50), "none": (60, 60, 60)}
BACKGROUND = (30, 30, 30)


def strip_image(model: ReviewModel, tracks: list, n_frames: int, width: int, strip: int) -> np.ndarray:
    """RGBA (len(tracks) * strip, width) picture of the tracks' scores; each column shows the
    worst frame it covers (so a doubtful frame is never hidden by its neighbours)."""
    width, n_frames = max(int(width), 1), max(int(n_frames), 1)
    img = np.empty((len(tracks) * strip, width, 4), np.uint8)
    img[...] = (*BACKGROUND, 255)
    starts = (np.arange(width) * n_frames) // width
    rows = np.arange(strip)[::-1, None]  # pixel rows counted from the strip's bottom
    thr = np.float32(model.threshold)
    for i, (_obj, t) in enumerate(tracks):
        worst = np.full(n_frames, 2.0, np.float32)  # 2: not computed; -1: absent; else the score
        n = min(t.length, n_frames)
        st = t.state[:n]
        worst[:n] = np.where(st == ABSENT, -1.0, np.where(st == NOT_DONE, 2.0, t.scores[:n]))
        col = np.minimum.reduceat(worst, starts)
        height = np.where(col < 0, 1.0, np.where(col > 1.5, 1.0, np.clip(col, 0.05, 1.0)))
        colour = np.empty((width, 3), np.uint8)
        colour[:] = COLOURS["ok"]
        colour[col < thr] = COLOURS["low"]
        colour[col < 0] = COLOURS["absent"]
        colour[col > 1.5] = COLOURS["none"]
        filled = rows < np.ceil(height * (strip - 1))[None, :]  # one background row between strips
        block = img[i * strip:(i + 1) * strip]
        block[..., :3] = np.where(filled[..., None], colour[None], block[..., :3])
    return img


class Timeline(QWidget):
    """Presence scores per object and frame, the threshold line and the current frame."""

    clicked = Signal(int, int)  # (frame, object id)

    def __init__(self, panel: ReviewPanel) -> None:
        super().__init__()
        self._panel = panel
        self.paints = 0
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setFixedHeight(24)
        self.setToolTip("Presence score per object and frame (red: absent, orange: below the threshold); "
                        "click to go to that frame and object.")

    def strip(self) -> int:
        n = len(self._panel.tracks())
        return int(np.clip(120 // max(n, 1), 3, 14))

    def refit(self) -> None:
        n = len(self._panel.tracks())
        self.setFixedHeight(max(24, n * self.strip()))
        self.update()

    def paintEvent(self, _event: Any) -> None:  # noqa: N802 - Qt's name
        painter = QPainter(self)
        try:
            self._paint(painter)
        finally:
            painter.end()

    def _paint(self, painter: QPainter) -> None:
        self.paints += 1
        painter.fillRect(self.rect(), QColor(*BACKGROUND))
        tracks, n, model = self._panel.tracks(), self._panel.n_frames(), self._panel.model()
        width = self.width() - MARGIN
        if not tracks or width <= 0:
            painter.setPen(QColor(150, 150, 150))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "no scores yet")
            return
        strip = self.strip()
        img = strip_image(model, tracks, n, width, strip)
        qimg = QImage(img.data, img.shape[1], img.shape[0], 4 * img.shape[1], QImage.Format.Format_RGBA8888)
        painter.drawImage(QPoint(MARGIN, 0), qimg)
        painter.setPen(QPen(QColor(230, 230, 230, 150), 1))
        for i in range(len(tracks)):  # the threshold line of each strip
            y = i * strip + int(round((strip - 1) * (1 - model.threshold)))
            painter.drawLine(MARGIN, y, self.width(), y)
        if strip >= 9:
            painter.setPen(QColor(200, 200, 200))
            for i, (obj, _t) in enumerate(tracks):
                painter.drawText(2, i * strip, MARGIN - 4, strip, Qt.AlignmentFlag.AlignRight, str(obj))
        frame = self._panel.current_frame()
        if frame is not None:
            x = MARGIN + int((frame + 0.5) * width / max(n, 1))
            painter.setPen(QPen(QColor(255, 255, 0), 1))
            painter.drawLine(x, 0, x, self.height())

    def at(self, x: float, y: float) -> tuple[int, int] | None:
        """(frame, object id) under a point of the widget (None: outside the strips)."""
        tracks, width = self._panel.tracks(), self.width() - MARGIN
        i = int(y // self.strip())
        if not tracks or width <= 0 or not 0 <= i < len(tracks):
            return None
        n = self._panel.n_frames()
        frame = int(np.clip((x - MARGIN) * n // width, 0, n - 1))
        return frame, tracks[i][0]

    def mousePressEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
        pos = event.position() if hasattr(event, "position") else event.pos()
        hit = self.at(pos.x(), pos.y())
        if hit is not None:
            self.clicked.emit(*hit)


class ReviewPanel:
    """Binds the review list, the threshold, "Next to review" and the timeline of a Sam2Widget."""

    def __init__(self, widget: Any) -> None:
        self._widget = weakref.ref(widget)
        self.list = widget.lost_list
        self._rows: dict[TrackKey, list[QListWidgetItem]] = {}
        self._order: list[TrackKey] = []  # tracks with rows, sorted
        self.rows_built = 0  # list items created so far (tests: a frame does not refill the list)
        self.rebuilds = 0  # whole-list rebuilds (a new threshold, a reset)
        self._last: tuple[Any, int] | None = None  # where "Next" went last (key, object)
        self.next_btn = QPushButton("Next to review")
        self.next_btn.setToolTip(f"Go to the next doubtful frame after this one and select its object ({NEXT_KEY}).")
        self.timeline = Timeline(self)
        layout = self.list.parentWidget().layout()
        at = layout.indexOf(self.list) + 1
        layout.insertWidget(at, self.next_btn)
        layout.insertWidget(at + 1, self.timeline)
        self.list.itemDoubleClicked.connect(self._on_double_click)
        widget.threshold_spin.valueChanged.connect(self.set_threshold)
        self.next_btn.clicked.connect(lambda *_: self.next_to_review())
        self.timeline.clicked.connect(self.go_to)
        widget.viewer.dims.events.current_step.connect(self._on_step)
        ref = weakref.ref(self)
        widget.viewer.bind_key(NEXT_KEY, lambda _v: (p := ref()) is not None and p.next_to_review(), overwrite=True)

    # ---- what the timeline reads ---------------------------------------------------------------
    def model(self) -> ReviewModel:
        return self._widget().state.review

    def _outer(self) -> tuple[int, ...]:
        w = self._widget()
        key = w.view.view_key() if w is not None else None
        return () if key is None else self.model().split_key(key)[0]

    def tracks(self) -> list:
        return self.model().timeline(self._outer())

    def n_frames(self) -> int:
        w = self._widget()
        image = w.image_layer if w is not None else None
        n = L.labels_shape(image)[w.axis] if image is not None and L.spatial_ndim(image) >= 3 else 0
        return max(n, max((t.length for _o, t in self.tracks()), default=1), 1)

    def current_frame(self) -> int | None:
        w = self._widget()
        key = w.view.view_key() if w is not None else None
        return None if not key else self.model().split_key(key)[1]

    # ---- the list ------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Show the model's changes: only the rows of the tracks that changed."""
        changes = self.model().take_changes()
        if changes is None:
            self._rebuild()
        else:
            for tk in sorted(changes):
                self._update_track(tk)
        self.timeline.refit()

    def _rebuild(self) -> None:
        self.rebuilds += 1
        self.list.clear()
        self._rows.clear()
        self._order.clear()
        for tk in sorted(self.model().tracks):
            self._update_track(tk)

    def _update_track(self, tk: TrackKey) -> None:
        ranges = self.model().ranges(tk)
        items = self._rows.get(tk, [])
        for i, r in enumerate(ranges):
            if i < len(items):
                item = items[i]
            else:
                item = QListWidgetItem()
                self.rows_built += 1
                self.list.insertItem(self._insert_row(tk, items), item)
                items.append(item)
            text = r.describe()
            if item.text() != text:
                item.setText(text)
                item.setData(Qt.ItemDataRole.UserRole, (r.key, r.obj_id))
        for item in items[len(ranges):]:
            self.list.takeItem(self.list.row(item))
        del items[len(ranges):]
        known = tk in self._rows
        if items and not known:
            self._rows[tk] = items
            self._order.insert(bisect_left(self._order, tk), tk)
        elif not items and known:
            del self._rows[tk]
            self._order.remove(tk)

    def _insert_row(self, tk: TrackKey, items: list) -> int:
        """Where the next row of track ``tk`` goes: after its rows, else before the next track's."""
        if items:
            return self.list.row(items[-1]) + 1
        i = bisect_left(self._order, tk)
        return self.list.row(self._rows[self._order[i]][0]) if i < len(self._order) else self.list.count()

    def rows(self) -> list[str]:
        return [self.list.item(i).text() for i in range(self.list.count())]

    # ---- actions -------------------------------------------------------------------------------
    def set_threshold(self, value: float) -> None:
        """A new threshold: every finished frame is checked again, the list and timeline follow."""
        w = self._widget()
        if w is not None:
            w.state.score_threshold = float(value)
            self.refresh()

    def go_to(self, frame_or_key: Any, obj_id: int) -> None:
        """Show a frame (an index on the sequence shown, or a frame key) and select object ``obj_id``."""
        w = self._widget()
        if w is None:
            return
        key = frame_or_key if isinstance(frame_or_key, tuple) else self.model().key_of(self._outer(), frame_or_key)
        w.view.go_to(tuple(key))
        w.obj_spin.setValue(int(obj_id))

    def next_to_review(self) -> tuple[Any, int] | None:
        """Go to the next doubtful frame (wrapping) and select its object; None: nothing to review."""
        w = self._widget()
        key = w.view.view_key() if w is not None else None
        if not key:
            return None
        after = self._last[1] if self._last is not None and tuple(self._last[0]) == tuple(key) else None
        found = self.model().next_to_review(key, after)
        if found is None:
            w._status(NOTHING)
            return None
        self._last = found
        self.go_to(*found)
        self._select_row(*found)
        return found

    def _select_row(self, key: Any, obj_id: int) -> None:
        outer, frame = self.model().split_key(key)
        for item, r in zip(self._rows.get((obj_id, outer), []), self.model().ranges((obj_id, outer))):
            if r.first <= frame <= r.last:
                self.list.setCurrentItem(item)
                return

    def _on_double_click(self, item: QListWidgetItem) -> None:
        key, obj = item.data(Qt.ItemDataRole.UserRole)
        self.go_to(tuple(key), obj)

    def _on_step(self, *_: Any) -> None:
        try:
            self.timeline.update()
        except RuntimeError:  # the panel's Qt side is gone
            pass
