"""Deterministic synthetic videos with ground truth, for sample data, tests and benchmarks.

Pure numpy/scipy: nothing here imports napari or Qt, so tests and benchmarks can use the generators
directly. Geometry is designed on a 256 x 256 frame over a normalised time axis and scaled to the
requested size and frame count, so the same story plays out at any size; the defaults take well
under a second each.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from scipy import ndimage as ndi

__all__ = ["SyntheticVideo", "make_cells_timelapse", "make_ultrasound_clip"]

_DESIGN = 256.0  # the frame size the geometry below is written for


@dataclass(frozen=True)
class SyntheticVideo:
    """A synthetic clip: ``image`` (T, Y, X), ground-truth ``labels`` (T, Y, X, int32, 0 = background)
    and ``events``, a plain dict describing what happens to which label id (read off the labels)."""

    image: np.ndarray
    labels: np.ndarray
    events: dict = field(default_factory=dict)


# --------------------------------------------------------------------------------------------------
# cells
# --------------------------------------------------------------------------------------------------
@dataclass
class _Cell:
    """One cell: shape and position as functions of normalised time s in [0, 1]."""

    label: int
    s_range: tuple[float, float]  # inclusive range of s where the cell exists (it may be off-frame)
    center: Callable[[float], tuple[float, float]]  # (y, x) in design pixels
    axes: Callable[[float], tuple[float, float]]  # (semi-axis along angle, across), design pixels
    angle: Callable[[float], float]  # radians, direction of the first semi-axis in the (x, y) plane
    brightness: float
    jitter: bool = True


def _cells_story(rng: np.random.Generator, s_div: float) -> list[_Cell]:
    """The scripted population: ids 1-6 exist at the start, 7 enters, 4 divides into 8 and 9."""

    def bright() -> float:
        return float(rng.uniform(900.0, 1500.0))

    def const(v):
        return lambda s: v

    cells = [
        # 1: a bystander wandering in the upper left, slowly turning
        _Cell(1, (0, 1), lambda s: (60 + 12 * s, 60 + 20 * s), const((14.0, 10.0)),
              lambda s: 0.3 + 1.2 * s, bright()),
        # 6: a bystander lower left
        _Cell(6, (0, 1), lambda s: (222 - 6 * s, 62 + 14 * s), const((12.0, 9.0)),
              lambda s: -0.4 + 0.8 * s, bright()),
    ]
    # 2 and 3 approach each other and stay in contact (touching labels) from about s = 0.55 on
    meet_x, r_pair = 95.0, 13.0
    cells += [
        _Cell(2, (0, 1), lambda s: (170 + 10 * s, min(40 + 80 * s, meet_x - r_pair)),
              const((r_pair, r_pair)), const(0.0), bright(), jitter=False),
        _Cell(3, (0, 1), lambda s: (170 + 10 * s, max(150 - 80 * s, meet_x + r_pair)),
              const((r_pair, r_pair)), const(0.0), bright(), jitter=False),
    ]
    # 4 elongates, then divides at s_div into 8 and 9, which move apart and grow a little
    parent_c, theta = (90.0, 190.0), np.deg2rad(30.0)
    grow = 0.15  # the parent elongates over this much normalised time before dividing

    def parent_axes(s: float) -> tuple[float, float]:
        k = float(np.clip((s - (s_div - grow)) / grow, 0.0, 1.0))
        return 12.0 + 6.0 * k, 12.0 - 1.5 * k

    def parent_center(s: float) -> tuple[float, float]:
        return parent_c[0] + 4 * s, parent_c[1] - 3 * s

    def daughter(sign: float) -> Callable[[float], tuple[float, float]]:
        def center(s: float) -> tuple[float, float]:
            cy, cx = parent_center(s)
            d = 8.5 + 9.0 * (1.0 - np.exp(-(s - s_div) / 0.15))
            return cy + sign * d * np.sin(theta), cx + sign * d * np.cos(theta)

        return center

    def daughter_axes(s: float) -> tuple[float, float]:
        k = min(1.0, (s - s_div) / 0.3)
        return 9.5 + 1.5 * k, 9.0 + 1.5 * k

    b4 = bright()
    eps = 1e-9
    cells += [
        _Cell(4, (0, s_div - eps), parent_center, parent_axes, const(float(theta)), b4),
        _Cell(8, (s_div, 1), daughter(-1.0), daughter_axes, const(float(theta)), b4 * 0.95),
        _Cell(9, (s_div, 1), daughter(+1.0), daughter_axes, const(float(theta)), b4 * 1.05),
    ]
    # 5 drifts out through the right edge; 7 comes in through the top edge
    cells += [
        _Cell(5, (0, 1), lambda s: (220 + 12 * s, 200 + 88 * s), const((12.0, 10.0)),
              const(0.2), bright(), jitter=False),
        _Cell(7, (0, 1), lambda s: (-22 + 64 * s, 128 + 8 * s), const((12.0, 11.0)),
              lambda s: 1.2 - 0.5 * s, bright(), jitter=False),
    ]
    return cells


def _paint_ellipse(canvas, labels, cy, cx, a, b, theta, amp, label, edge) -> None:
    """Add a soft-edged ellipse to ``canvas`` and paint its hard mask (r <= 1) into ``labels``."""
    h, w = canvas.shape
    m = max(a, b) + 4.0 * edge
    y0, y1 = max(int(np.floor(cy - m)), 0), min(int(np.ceil(cy + m)) + 1, h)
    x0, x1 = max(int(np.floor(cx - m)), 0), min(int(np.ceil(cx + m)) + 1, w)
    if y0 >= y1 or x0 >= x1:
        return
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    dy, dx = yy - cy, xx - cx
    c, s = np.cos(theta), np.sin(theta)
    u, v = dx * c + dy * s, -dx * s + dy * c
    r = np.sqrt((u / a) ** 2 + (v / b) ** 2)
    dist = (r - 1.0) * np.sqrt(a * b)  # ~ signed distance to the boundary in pixels
    profile = 1.0 / (1.0 + np.exp(np.clip(dist / edge, -30, 30)))
    interior = 0.8 + 0.2 * np.clip(1.0 - r**2, 0.0, 1.0)  # brighter towards the middle
    canvas[y0:y1, x0:x1] += amp * profile * interior
    labels[y0:y1, x0:x1][r <= 1.0] = label


def _presence(labels: np.ndarray, label: int) -> np.ndarray:
    return np.array([(frame == label).any() for frame in labels])


def make_cells_timelapse(n_frames: int = 40, size: int = 256, seed: int = 0) -> SyntheticVideo:
    """A fluorescence-like time-lapse of moving cells with ground truth.

    uint16 image with background gradient, bleaching, shot and read noise; soft-edged elliptical
    cells. Cells 2 and 3 come into contact and stay touching; cell 4 elongates and divides into
    8 and 9 (new ids) at about the middle frame; cell 5 leaves through the right edge; cell 7
    enters through the top edge. Ids are consistent over time.
    """
    if n_frames < 2:
        raise ValueError("n_frames must be >= 2")
    rng = np.random.default_rng(seed)
    scale = size / _DESIGN
    s_div = 0.5
    cells = _cells_story(rng, s_div)
    jitter = {c.label: np.cumsum(rng.normal(0.0, 0.35, size=(n_frames, 2)), axis=0) for c in cells}
    jitter[8] = jitter[9] = jitter[4]  # the daughters start where the (jittered) parent was

    image = np.empty((n_frames, size, size), dtype=np.float32)
    labels = np.zeros((n_frames, size, size), dtype=np.int32)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    background = 180.0 + 60.0 * xx + 30.0 * yy - 40.0 * ((yy - 0.5) ** 2 + (xx - 0.5) ** 2)
    edge = 0.9 * scale
    for t in range(n_frames):
        s = t / (n_frames - 1)
        bleach = np.exp(-0.25 * s)
        canvas = background.copy()
        for cell in cells:
            if not (cell.s_range[0] <= s <= cell.s_range[1]):
                continue
            cy, cx = cell.center(s)
            if cell.jitter:
                cy, cx = cy + jitter[cell.label][t, 0], cx + jitter[cell.label][t, 1]
            a, b = cell.axes(s)
            _paint_ellipse(canvas, labels[t], cy * scale, cx * scale, a * scale, b * scale,
                           cell.angle(s), cell.brightness * bleach, cell.label, edge)
        image[t] = canvas
    # camera: shot noise (Gaussian approximation, gain 2) plus read noise
    image += np.sqrt(2.0 * image) * rng.standard_normal(image.shape, dtype=np.float32)
    image += rng.normal(0.0, 8.0, size=image.shape).astype(np.float32)
    image = np.clip(np.rint(image), 0, 65535).astype(np.uint16)

    parent_present = _presence(labels, 4)
    events = {
        "divides": {"parent": 4, "daughters": (8, 9),
                    "frame": int(np.argmin(parent_present)) if not parent_present.all() else None},
        "leaves": {"label": 5, "last_frame": int(np.flatnonzero(_presence(labels, 5)).max())},
        "enters": {"label": 7, "first_frame": int(np.flatnonzero(_presence(labels, 7)).min())},
        "touch": {"labels": (2, 3)},
    }
    return SyntheticVideo(image, labels, events)


# --------------------------------------------------------------------------------------------------
# ultrasound
# --------------------------------------------------------------------------------------------------
def make_ultrasound_clip(
    n_frames: int = 48, size: int = 256, seed: int = 0, n_cycles: float = 3.0
) -> SyntheticVideo:
    """An ultrasound-like B-mode clip: a fan-shaped field of view, Rayleigh speckle that decorrelates
    slowly over time, depth attenuation and log compression, and a dark (anechoic) cavity with a
    bright wall whose radius pulsates ``n_cycles`` times over the clip. Ground truth: the cavity,
    label 1. uint8 image, 0 outside the fan.
    """
    if n_frames < 2:
        raise ValueError("n_frames must be >= 2")
    rng = np.random.default_rng(seed)
    scale = size / _DESIGN
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / scale  # design pixels

    # fan geometry: apex above the top edge, depth r from the apex, angle phi from the vertical
    apex_y, apex_x, half_angle = -30.0, 128.0, np.deg2rad(38.0)
    r = np.hypot(yy - apex_y, xx - apex_x)
    phi = np.arctan2(xx - apex_x, yy - apex_y)
    r_min, r_max = 40.0, 280.0
    fan = (r >= r_min) & (r <= r_max) & (np.abs(phi) <= half_angle)

    # static tissue reflectivity: smooth texture plus a bright superficial layer
    texture = ndi.gaussian_filter(rng.standard_normal((size, size)).astype(np.float32), 6 * scale)
    texture /= texture.std() + 1e-6
    tissue = np.clip(0.25 + 0.08 * texture, 0.05, 1.0)
    tissue += 0.5 * np.exp(-(((r - 62.0) / 5.0) ** 2))

    # complex speckle field: AR(1) over time, smoothed anisotropically (axial ~ y, lateral ~ x)
    shape = (n_frames, size, size)
    w_re = rng.standard_normal(shape, dtype=np.float32)
    w_im = rng.standard_normal(shape, dtype=np.float32)
    rho = 0.7
    for t in range(1, n_frames):
        w_re[t] = rho * w_re[t - 1] + np.sqrt(1 - rho**2) * w_re[t]
        w_im[t] = rho * w_im[t - 1] + np.sqrt(1 - rho**2) * w_im[t]
    sigma = (0.0, 0.8 * scale, 1.8 * scale)
    z_re = ndi.gaussian_filter(w_re, sigma)
    z_im = ndi.gaussian_filter(w_im, sigma)
    speckle = np.sqrt(z_re**2 + z_im**2)
    speckle /= np.sqrt(np.mean(speckle**2))  # Rayleigh amplitude with unit power
    del w_re, w_im, z_re, z_im

    # the pulsating cavity: an ellipse whose radius follows a sine, with a bright wall around it
    cy0, cx0, wall = 140.0, 128.0, 10.0
    t_axis = np.arange(n_frames)
    radius = 42.0 + 12.0 * np.sin(2 * np.pi * n_cycles * t_axis / n_frames)
    center_y = cy0 + 3.0 * np.sin(2 * np.pi * n_cycles * t_axis / n_frames + 0.6)
    gain = np.exp(-0.004 * (r - r_min))  # attenuation left after time-gain compensation

    image = np.empty(shape, dtype=np.uint8)
    labels = np.zeros(shape, dtype=np.int32)
    ref_db = None
    for t in range(n_frames):
        rr = np.sqrt(((yy - center_y[t]) / 1.15) ** 2 + (xx - cx0) ** 2)  # taller than wide
        inside = 1.0 / (1.0 + np.exp(np.clip((rr - radius[t]) / 1.2, -30, 30)))
        ring = np.exp(-(((rr - radius[t] - wall / 2) / (wall / 2)) ** 2))
        refl = tissue * (1.0 - inside) + 0.0015 * inside + 0.6 * ring
        envelope = np.sqrt(refl) * speckle[t] * gain + 0.008 * np.abs(rng.standard_normal((size, size)))
        db = 20.0 * np.log10(envelope + 1e-4)
        if ref_db is None:  # fix the display range on the first frame: no flicker over time
            ref_db = float(np.percentile(db[fan], 99.5))
        grey = np.clip((db - (ref_db - 40.0)) / 40.0, 0.0, 1.0) * 255.0
        image[t] = np.where(fan, grey, 0.0).astype(np.uint8)
        labels[t][(rr <= radius[t]) & fan] = 1

    area = labels.reshape(n_frames, -1).sum(axis=1)
    events = {
        "cavity": {"label": 1, "period_frames": n_frames / n_cycles, "area_px": area.tolist()},
        "fan_mask": fan,
    }
    return SyntheticVideo(image, labels, events)
