"""Read any prompt file into a :class:`PromptSet`, choosing the parser from the file.

``.csv`` files are napari Points or Shapes layers (told apart by their header);
``.tif``/``.tiff``/``.npy`` files are label images used as mask prompts. Prompt frames are
frame keys (all leading indices). Given the stack's :class:`StackLayout`, the prompts are
checked by :meth:`StackLayout.check_prompts` (the rules of the API and the widget), so a wrong
file fails before any model is loaded; without it, only what the file alone shows is checked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ..engine.layout import StackLayout
from ..engine.prompts import PromptSet
from ..errors import PromptError
from ._csv_table import read_csv_table
from .prompt_csv import SHAPES_COLUMNS, boxes_from_table, is_shapes_table, points_from_table
from .prompt_labels import read_label_prompts
from .stack import NPY_SUFFIXES, TIFF_SUFFIXES

#: Frame size assumed when the stack is unknown: any click or box is on it.
_ANY_SIZE = 2**62


def read_prompts(
    path: str | Path,
    layout: StackLayout | None = None,
    *,
    ndim: int | None = None,
    index: Sequence[int] | None = None,
    n_frames: int | None = None,
    frame_shape: tuple[int, int] | None = None,
) -> PromptSet:
    """Prompts stored in ``path``; raise :class:`PromptError` naming the file and problem.

    ``layout``: the stack's layout; the prompts are checked against it (frames, clicks, boxes
    clipped to the image, mask shapes) and may lie at every outer position of an N-D stack.
    ``ndim``: number of coordinate columns the CSV must have (the layer's ndim; implied by
    ``layout``). ``index`` keeps only the prompts at one position of the axes before the last
    leading one; without it and without ``layout``, a file with several such positions is refused.
    ``n_frames`` and ``frame_shape`` (rows, cols), both given, stand for the layout of a (T, Y, X) stack.
    """
    if n_frames is not None or frame_shape is not None:
        if layout is not None or n_frames is None or frame_shape is None:
            raise TypeError("read_prompts takes a layout, or n_frames and frame_shape together (a (T, Y, X) stack).")
        layout = StackLayout((int(n_frames), *(int(n) for n in frame_shape)), 0, False)
    path = Path(path)
    if not path.is_file():
        raise PromptError(f"Prompt file not found: {path}; check the path.")
    every_outer = layout is not None
    if layout is not None:
        ndim = len(layout.leading) + 2
    suffix = path.suffix.lower()
    if suffix == ".csv":
        table = read_csv_table(path)
        reader = boxes_from_table if is_shapes_table(table) else points_from_table
        prompts = reader(table, ndim=ndim, index=index, every_outer=every_outer)
    elif suffix in TIFF_SUFFIXES or suffix in NPY_SUFFIXES:
        prompts = read_label_prompts(path, index=index, every_outer=every_outer)
    else:
        raise PromptError(
            f"Unsupported prompt file type '{path.suffix}' ({path.name}); use a napari Points "
            "or Shapes CSV, or a label TIFF."
        )
    return checked(prompts, path.name, layout)


def read_points_csv(
    path: str | Path, *, ndim: int | None = None, index: Sequence[int] | None = None
) -> PromptSet:
    """Point prompts from a Points-layer CSV (see ``prompt_csv``)."""
    path = Path(path)
    return checked(points_from_table(read_csv_table(path), ndim=ndim, index=index), path.name)


def read_shapes_csv(
    path: str | Path, *, ndim: int | None = None, index: Sequence[int] | None = None
) -> PromptSet:
    """Box prompts from a Shapes-layer CSV of rectangles (see ``prompt_csv``)."""
    path = Path(path)
    table = read_csv_table(path)
    if not is_shapes_table(table):
        raise PromptError(
            f"{path.name} is not a Shapes CSV (needs columns {', '.join(SHAPES_COLUMNS)}); "
            "save the Shapes layer from napari."
        )
    return checked(boxes_from_table(table, ndim=ndim, index=index), path.name)


def checked(prompts: PromptSet, source: str, layout: StackLayout | None = None) -> PromptSet:
    """``prompts`` checked by ``layout`` (or, unknown, by one just large enough for them)."""
    if layout is None:
        if not prompts:
            return prompts
        layout = _spanning_layout(prompts)
    return layout.check_prompts(prompts, source)


def _spanning_layout(prompts: PromptSet) -> StackLayout:
    """A layout on which every frame of ``prompts`` exists and every click and box lies: what
    ``check_prompts`` then refuses is wrong whatever the stack (ids, zero-area boxes)."""
    frames = prompts.frames
    leading = tuple(max(k[a] for k in frames) + 1 for a in range(len(frames[0])))
    frame_shape = tuple(prompts.masks[0].mask.shape) if prompts.masks else (_ANY_SIZE, _ANY_SIZE)
    return StackLayout((*leading, *frame_shape), len(leading) - 1, False)
