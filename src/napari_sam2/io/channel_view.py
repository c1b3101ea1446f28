"""A lazy view of a stack with its channel axis moved last, where ``VideoSession`` expects it."""

from __future__ import annotations

from typing import Any

import numpy as np


class ChannelLast:
    """``data`` (any lazily indexable array) seen with axis ``channel_axis`` moved last; reads only what is indexed."""

    def __init__(self, data: Any, channel_axis: int) -> None:
        self.data, self.c = data, channel_axis
        shape = list(data.shape)
        n = shape.pop(channel_axis)
        self.shape = (*shape, n)
        self.dtype = np.dtype(data.dtype)
        self.ndim = len(self.shape)

    def __getitem__(self, key: Any) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        key = key + (slice(None),) * (self.ndim - len(key))
        src = list(key[:-1])
        src.insert(self.c, key[-1])
        out = np.asarray(self.data[tuple(src)])
        if isinstance(key[-1], (int, np.integer)):
            return out
        pos = sum(not isinstance(k, (int, np.integer)) for k in src[: self.c])
        return np.moveaxis(out, pos, -1)


def channels_last(stack: Any) -> tuple[Any, bool]:
    """(data with any C axis moved last, whether it has one) of an opened ``io.Stack``."""
    axes = stack.axes
    if "C" not in axes:
        return stack.data, False
    c = axes.index("C")
    return (stack.data if c == len(axes) - 1 else ChannelLast(stack.data, c)), True
