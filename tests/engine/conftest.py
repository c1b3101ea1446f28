"""Shared fixtures of the engine tests: one fast random-weights model and synthetic stacks."""

from __future__ import annotations

import numpy as np
import pytest

from napari_sam2.model.testing import random_model


@pytest.fixture(scope="session")
def model():
    """The miniature SAM 2.1 layout with deterministic random weights, 256 px internally."""
    return random_model()


def blob_stack(n_frames: int = 12, shape=(72, 96), dtype=np.uint8, seed: int = 0) -> np.ndarray:
    """A bright disc drifting right over a noisy background."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    frames = []
    for t in range(n_frames):
        cy, cx = shape[0] // 2, 20 + 2 * t
        disc = ((yy - cy) ** 2 + (xx - cx) ** 2) < 12**2
        img = 40 + 150 * disc + rng.normal(0, 8, shape)
        frames.append(img)
    stack = np.clip(np.stack(frames), 0, 255)
    if dtype == np.uint8:
        return stack.astype(np.uint8)
    if dtype == np.uint16:
        return (stack * 200 + 1000).astype(np.uint16)
    return (stack / 255.0).astype(dtype)


@pytest.fixture
def stack() -> np.ndarray:
    return blob_stack()


@pytest.fixture
def make_stack():
    """The stack factory itself, for tests that need several stacks."""
    return blob_stack
