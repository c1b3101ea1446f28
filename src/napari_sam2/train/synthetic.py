"""Randomised synthetic clips with ground truth, for training the demo model and measuring it.

The sample-data generators (:mod:`napari_sam2._napari.synthetic`) play one scripted story; these draw
a new scene from a seed and a :class:`SceneSettings`: how many cells, their sizes, speeds and
brightness, divisions, cells entering and leaving, background, blur and camera noise; for
ultrasound-like clips the fan, speckle, and one or two pulsating, drifting dark cavities. Training
uses one settings object and seeds; the quality benchmark uses other seeds and other settings, so
what it measures was never seen. Pure numpy / scipy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from .._napari.synthetic import SyntheticVideo, _paint_ellipse

__all__ = ["SceneSettings", "TRAIN_SCENES", "HELD_OUT_SCENES", "random_cells_clip", "random_ultrasound_clip"]


@dataclass(frozen=True)
class SceneSettings:
    """Ranges the scenes are drawn from (uniform unless said otherwise); sizes in pixels of a 256 frame."""

    n_cells: tuple[int, int] = (3, 18)
    radius: tuple[float, float] = (7.0, 20.0)
    elongation: tuple[float, float] = (1.0, 1.8)  # long / short semi-axis
    speed: tuple[float, float] = (0.0, 2.5)  # px per frame
    divide_p: float = 0.3  # chance that one cell of the clip divides
    brightness: tuple[float, float] = (300.0, 1500.0)  # cell amplitude above background (counts)
    background: tuple[float, float] = (80.0, 400.0)
    blur: tuple[float, float] = (0.0, 1.5)  # Gaussian sigma of the optics (px)
    read_noise: tuple[float, float] = (2.0, 25.0)
    n_cavities: tuple[int, int] = (1, 2)
    cavity_radius: tuple[float, float] = (18.0, 50.0)
    pulse: tuple[float, float] = (0.05, 0.3)  # relative radius change
    speckle_rho: tuple[float, float] = (0.5, 0.9)  # frame-to-frame speckle correlation


TRAIN_SCENES = SceneSettings()
# held out: other ranges (more, smaller and dimmer cells, more noise; larger pulsation), and other seeds
HELD_OUT_SCENES = SceneSettings(n_cells=(8, 24), radius=(6.0, 15.0), speed=(0.5, 3.0), divide_p=0.5,
                                brightness=(250.0, 1000.0), background=(150.0, 500.0), blur=(0.5, 2.0),
                                read_noise=(10.0, 35.0), cavity_radius=(22.0, 45.0), pulse=(0.2, 0.35),
                                speckle_rho=(0.6, 0.85))


def _u(rng: np.random.Generator, lo_hi: tuple[float, float]) -> float:
    return float(rng.uniform(*lo_hi))


def random_cells_clip(seed: int, n_frames: int = 8, size: int = 256,
                      settings: SceneSettings = TRAIN_SCENES) -> SyntheticVideo:
    """A fluorescence-like clip of randomly drawn cells (uint16 image, int32 labels, ids stable over
    time; a dividing cell ends and two new ids continue). ``events["divides"]`` lists (parent,
    daughter, daughter, frame)."""
    rng = np.random.default_rng([seed, 11])
    sc = size / 256.0
    n = int(rng.integers(settings.n_cells[0], settings.n_cells[1] + 1))
    cells = []  # [label, y, x, vy, vx, a, b, theta, omega, amp, first, last]
    for k in range(n):
        r = _u(rng, settings.radius)
        e = _u(rng, settings.elongation)
        speed, heading = _u(rng, settings.speed), rng.uniform(0, 2 * np.pi)
        cells.append([k + 1, rng.uniform(-10, 266), rng.uniform(-10, 266), speed * np.sin(heading),
                      speed * np.cos(heading), r * np.sqrt(e), r / np.sqrt(e), rng.uniform(0, np.pi),
                      rng.normal(0, 0.05), _u(rng, settings.brightness), 0, n_frames - 1])
    divisions = []
    if n_frames >= 3 and rng.random() < settings.divide_p:
        p = cells[int(rng.integers(n))]
        t_div = int(rng.integers(1, n_frames - 1))
        p[11] = t_div - 1
        py, px = p[1] + p[3] * t_div, p[2] + p[4] * t_div  # the parent where it divides
        for sign, new in ((-1, n + 1), (1, n + 2)):
            vy, vx = p[3] + sign * 1.2 * np.sin(p[7]), p[4] + sign * 1.2 * np.cos(p[7])
            off = 0.6 * p[5]
            y0 = py + sign * off * np.sin(p[7]) - vy * t_div  # so that y(t) = y0 + vy * t
            x0 = px + sign * off * np.cos(p[7]) - vx * t_div
            cells.append([new, y0, x0, vy, vx, p[6] * 0.9, p[6] * 0.8, p[7], 0.0, p[9], t_div, n_frames - 1])
        divisions.append((p[0], n + 1, n + 2, t_div))
    bg = _u(rng, settings.background)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    gy, gx = rng.normal(0, 0.2, 2)
    background = bg * (1.0 + gy * (yy - 0.5) + gx * (xx - 0.5))
    blur, read = _u(rng, settings.blur) * sc, _u(rng, settings.read_noise)
    bleach = rng.uniform(0.0, 0.3)
    image = np.empty((n_frames, size, size), dtype=np.float32)
    labels = np.zeros((n_frames, size, size), dtype=np.int32)
    for t in range(n_frames):
        canvas = np.zeros((size, size), np.float32)
        for c in cells:
            if not c[10] <= t <= c[11]:
                continue
            cy, cx = (c[1] + c[3] * t) * sc, (c[2] + c[4] * t) * sc
            _paint_ellipse(canvas, labels[t], cy, cx, c[5] * sc, c[6] * sc, c[7] + c[8] * t,
                           c[9] * np.exp(-bleach * t / n_frames), c[0], 0.9 * sc)
        if blur > 0.05:
            canvas = ndi.gaussian_filter(canvas, blur)
        image[t] = canvas + background
    image += np.sqrt(2.0 * image) * rng.standard_normal(image.shape, dtype=np.float32)
    image += read * rng.standard_normal(image.shape, dtype=np.float32)
    image = np.clip(np.rint(image), 0, 65535).astype(np.uint16)
    return SyntheticVideo(image, labels, {"divides": divisions})


def random_ultrasound_clip(seed: int, n_frames: int = 8, size: int = 256,
                           settings: SceneSettings = TRAIN_SCENES) -> SyntheticVideo:
    """An ultrasound-like B-mode clip (uint8) with one or two dark cavities (labels 1, 2) that pulsate
    and drift inside a fan of Rayleigh speckle; the cavities do not overlap."""
    rng = np.random.default_rng([seed, 22])
    sc = size / 256.0
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / sc
    apex_y, apex_x = rng.uniform(-60, -10), rng.uniform(108, 148)
    half = np.deg2rad(rng.uniform(30, 50))
    r = np.hypot(yy - apex_y, xx - apex_x)
    phi = np.arctan2(xx - apex_x, yy - apex_y)
    fan = (r >= 40 - apex_y * 0.2) & (r <= 300) & (np.abs(phi) <= half)
    texture = ndi.gaussian_filter(rng.standard_normal((size, size)).astype(np.float32), rng.uniform(3, 8) * sc)
    texture /= texture.std() + 1e-6
    tissue = np.clip(rng.uniform(0.15, 0.35) + rng.uniform(0.04, 0.12) * texture, 0.03, 1.0)
    shape = (n_frames, size, size)
    rho = _u(rng, settings.speckle_rho)
    w = rng.standard_normal((2,) + shape, dtype=np.float32)
    for t in range(1, n_frames):
        w[:, t] = rho * w[:, t - 1] + np.sqrt(1 - rho**2) * w[:, t]
    sigma = (0.0, 0.0, rng.uniform(0.6, 1.2) * sc, rng.uniform(1.2, 2.4) * sc)
    z = ndi.gaussian_filter(w, sigma)
    speckle = np.sqrt(z[0] ** 2 + z[1] ** 2)
    speckle /= np.sqrt(np.mean(speckle**2))
    del w, z
    k = int(rng.integers(settings.n_cavities[0], settings.n_cavities[1] + 1))
    cavities = []
    for _ in range(30):  # place non-overlapping cavities inside the fan
        if len(cavities) == k:
            break
        rad = _u(rng, settings.cavity_radius)
        cy, cx = rng.uniform(60 + rad, 250 - rad), rng.uniform(40 + rad, 216 - rad)
        if not fan[min(int(cy * sc), size - 1), min(int(cx * sc), size - 1)]:
            continue
        if any(np.hypot(cy - c[0], cx - c[1]) < (rad + c[2]) * 1.5 + 12 for c in cavities):
            continue
        cavities.append((cy, cx, rad, rng.uniform(0.8, 1.3), _u(rng, settings.pulse), rng.uniform(0.05, 0.25),
                         rng.uniform(0, 2 * np.pi), rng.normal(0, 0.6, 2)))
    gain = np.exp(-rng.uniform(0.002, 0.006) * np.maximum(r - 40, 0))
    image = np.empty(shape, dtype=np.uint8)
    labels = np.zeros(shape, dtype=np.int32)
    ref_db = None
    for t in range(n_frames):
        refl = tissue.copy()
        for i, (cy, cx, rad, aspect, pulse, freq, phase, drift) in enumerate(cavities):
            rt = rad * (1 + pulse * np.sin(2 * np.pi * freq * t + phase))
            cyt, cxt = cy + drift[0] * t, cx + drift[1] * t
            rr = np.sqrt(((yy - cyt) / aspect) ** 2 + (xx - cxt) ** 2)
            inside = 1.0 / (1.0 + np.exp(np.clip((rr - rt) / 1.2, -30, 30)))
            wall = max(rt * 0.2, 4.0)
            ring = np.exp(-(((rr - rt - wall / 2) / (wall / 2)) ** 2))
            refl = refl * (1.0 - inside) + 0.0015 * inside + 0.5 * ring
            labels[t][(rr <= rt) & fan] = i + 1
        envelope = np.sqrt(refl) * speckle[t] * gain + 0.008 * np.abs(rng.standard_normal((size, size)))
        db = 20.0 * np.log10(envelope + 1e-4)
        if ref_db is None:
            ref_db = float(np.percentile(db[fan], 99.5))
        grey = np.clip((db - (ref_db - 40.0)) / 40.0, 0.0, 1.0) * 255.0
        image[t] = np.where(fan, grey, 0.0).astype(np.uint8)
    return SyntheticVideo(image, labels, {"fan_mask": fan})
