"""Read any prompt file into a :class:`PromptSet`, choosing the parser from the file.

``.csv`` files are napari Points or Shapes layers (told apart by their header);
``.tif``/``.tiff``/``.npy`` files are label images used as mask prompts. When the
stack's frame count and frame shape are given, prompts are checked against them here,
so a wrong file fails before any model is loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..engine.prompts import PromptSet
from ..errors import PromptError
from ._csv_table import read_csv_table
from .prompt_csv import boxes_from_table, is_shapes_table, points_from_table
from .prompt_labels import read_label_prompts
from .stack import NPY_SUFFIXES, TIFF_SUFFIXES


def read_prompts(
    path: str | Path,
    *,
    ndim: int | None = None,
    n_frames: int | None = None,
    frame_shape: tuple[int, int] | None = None,
    index: Sequence[int] | None = None,
) -> PromptSet:
    """Prompts stored in ``path``; raise :class:`PromptError` naming the file and problem.

    ``ndim``: number of coordinate columns the CSV must have (the layer's ndim); None
    accepts what the file has (2: frame 0; 3: frame, row, col). ``n_frames`` and
    ``frame_shape`` (rows, cols) enable range checks; ``index`` picks the outer-axis
    position of files with more than 3 dimensions.
    """
    path = Path(path)
    if not path.is_file():
        raise PromptError(f"Prompt file not found: {path}; check the path.")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        table = read_csv_table(path)
        reader = boxes_from_table if is_shapes_table(table) else points_from_table
        prompts = reader(table, ndim=ndim, index=index)
    elif suffix in TIFF_SUFFIXES or suffix in NPY_SUFFIXES:
        prompts = read_label_prompts(path, index=index)
    else:
        raise PromptError(
            f"Unsupported prompt file type '{path.suffix}' ({path.name}); use a napari Points "
            "or Shapes CSV, or a label TIFF."
        )
    check_prompts(prompts, path.name, n_frames=n_frames, frame_shape=frame_shape)
    return prompts


def check_prompts(
    prompts: PromptSet,
    source: str,
    *,
    n_frames: int | None = None,
    frame_shape: tuple[int, int] | None = None,
) -> None:
    """Raise PromptError for frames outside the stack, clicks outside the frame, boxes
    not overlapping it or masks of the wrong shape. Pixel i spans [i - 0.5, i + 0.5]."""
    if n_frames is not None:
        for frame in prompts.frames:
            if not 0 <= frame < n_frames:
                raise PromptError(
                    f"{source}: a prompt is on frame {frame} but the stack has {n_frames} "
                    f"frames (0 to {n_frames - 1}); fix the frame index."
                )
    if frame_shape is None:
        return
    hi = np.asarray(frame_shape, np.float64) - 0.5
    for p in prompts.points:
        outside = np.any((p.points < -0.5) | (p.points > hi), axis=1)
        if outside.any():
            r, c = p.points[int(np.argmax(outside))]
            raise PromptError(
                f"{source}: click ({r:g}, {c:g}) of object {p.obj_id} on frame {p.frame} is "
                f"outside the {frame_shape[0]} x {frame_shape[1]} image; move or delete it."
            )
    for b in prompts.boxes:
        r0, c0, r1, c1 = b.box
        if r1 < -0.5 or c1 < -0.5 or r0 > hi[0] or c0 > hi[1]:
            raise PromptError(
                f"{source}: box of object {b.obj_id} on frame {b.frame} lies outside the "
                f"{frame_shape[0]} x {frame_shape[1]} image; redraw it."
            )
    for m in prompts.masks:
        if tuple(m.mask.shape) != tuple(frame_shape):
            raise PromptError(
                f"{source}: mask of shape {m.mask.shape} does not match the "
                f"{frame_shape[0]} x {frame_shape[1]} frames; use labels of the same size."
            )
