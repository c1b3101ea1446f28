"""What a :class:`~.controller.Sam2Controller` reads from and reports to: its view.

The panel implements it (:class:`~.view.PanelView`); tests implement it with plain objects (an
array to segment, a PromptSet, a napari Labels layer). Qt-free.
"""

from __future__ import annotations

from typing import Any

from ..engine.layout import FrameKey
from ..engine.prompts import PromptSet
from .review import ReviewModel

#: (data, propagation axis, VideoSession keyword arguments such as ``rgb`` or ``intensity_range``)
StackSpec = tuple[Any, int, dict]


class ControllerView:
    """What a :class:`Sam2Controller` reads from and reports to; every method has a quiet default.

    The read methods are called when a job starts (so a queued job sees the layers as they are
    then); the report methods are called on the thread that runs the callbacks (Qt's main thread).
    """

    # ---- read ----------------------------------------------------------------------------------
    def stack(self) -> StackSpec | None:
        """The image to open a session on, or None (nothing to segment)."""
        return None

    def prompts(self) -> PromptSet:
        """Every usable prompt of the prompt layers, with frame keys."""
        return PromptSet()

    def output(self, create: bool) -> Any:
        """The Labels layer results go to; ``create``: make one when there is none (else None)."""
        return None

    def view_key(self) -> FrameKey | None:
        """The frame key shown now (None: unknown)."""
        return None

    # ---- report --------------------------------------------------------------------------------
    def status(self, text: str) -> None:
        """One line for the status label."""

    def message(self, level: str, text: str) -> None:
        """A notification ('error', 'warning' or 'info') that names the fix."""

    def model_note(self, text: str) -> None:
        """A note on the model in use that stays visible while it is ('' clears it): the demo model
        standing in for an official one that could not be downloaded."""

    def busy(self, running: bool, cancellable: bool) -> None:
        """A long job (load, open, propagate) started (``running``) or everything ended."""

    def progress(self, done: int, total: int, text: str, phase: str) -> None:
        """Propagation progress; ``phase``: 'start', 'frame', 'done' (complete) or 'stopped'."""

    def queued(self) -> None:
        """An edit arrived during a propagation: it is applied once the propagation ends."""

    def written(self, result: Any) -> None:
        """A FrameResult was written into the output layer."""

    def go_to(self, key: FrameKey) -> None:
        """Show frame ``key`` (a propagation being followed)."""

    def review(self, model: ReviewModel) -> None:
        """The frames to review changed (``model.take_changes()`` says which objects)."""

    def session_opened(self) -> None:
        """A new session is ready (e.g. prefetch the frame shown)."""
