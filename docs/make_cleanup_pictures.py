"""Draw the before / after pictures of docs/cleanup.md from synthetic labels (no model, no matplotlib).

    python docs/make_cleanup_pictures.py        # writes docs/images/cleanup_*.png

Each picture is one label plane before (left) and after (right) one clean-up step, objects in
fixed colours on black, scaled up with nearest-neighbour pixels. PNGs are written with
scikit-image's ``imsave`` (imageio underneath).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from napari_sam2.engine.cleanup import Cleanup
from napari_sam2.engine.flicker import drop_flicker_array

OUT = Path(__file__).resolve().parent / "images"
COLOURS = np.array([[0, 0, 0], [230, 159, 0], [86, 180, 233], [0, 158, 115], [240, 228, 66], [204, 121, 167]],
                   np.uint8)
ZOOM = 4
GAP = 6  # px between panels, at the zoomed scale


def _disc(shape, centre, radius):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2


def _rgb(plane: np.ndarray) -> np.ndarray:
    img = COLOURS[np.asarray(plane) % len(COLOURS)]
    return img.repeat(ZOOM, 0).repeat(ZOOM, 1)


def _panels(planes: list[np.ndarray]) -> np.ndarray:
    tiles = [_rgb(p) for p in planes]
    gap = np.full((tiles[0].shape[0], GAP, 3), 255, np.uint8)
    row = [tiles[0]]
    for tile in tiles[1:]:
        row += [gap, tile]
    return np.concatenate(row, axis=1)


def scene(shape=(64, 64), seed=0) -> np.ndarray:
    """Two cells with SAM-like defects: pinholes, specks, a spur, a dent and a cut."""
    rng = np.random.default_rng(seed)
    plane = np.zeros(shape, np.uint8)
    plane[_disc(shape, (22, 22), 14)] = 1
    plane[_disc(shape, (44, 44), 13)] = 2
    plane[(rng.random(shape) < 0.03) & (plane > 0)] = 0  # pinholes
    plane[18:22, 18:22] = 0  # one bigger hole (16 px)
    for r, c in ((5, 55), (58, 6), (40, 10)):
        plane[r:r + 2, c:c + 2] = 1  # specks of object 1
    plane[44, 57:63] = 2  # a one-pixel spur
    plane[30:34, 44:47] = 0  # a dent
    plane[12:14, 5:40] = 0  # a cut through object 1
    return plane


def main() -> list[Path]:
    from skimage.io import imsave

    OUT.mkdir(exist_ok=True)
    plane = scene()
    steps = {
        "fill_holes": Cleanup(fill_holes=20),
        "min_island": Cleanup(min_island=10),
        "keep_largest": Cleanup(keep_largest=True),
        "open": Cleanup(open_radius=1),
        "close": Cleanup(close_radius=2),
        "all": Cleanup(fill_holes=20, keep_largest=True, open_radius=1, close_radius=2),
    }
    written = []
    for name, cleanup in steps.items():
        path = OUT / f"cleanup_{name}.png"
        imsave(path, _panels([plane, cleanup.apply(plane)]), check_contrast=False)
        written.append(path)
    # flicker: three frames before (top) and after (bottom); object 3 is on the middle frame only
    movie = np.stack([plane] * 3)
    movie[1][_disc(plane.shape, (52, 14), 6) & (plane == 0)] = 3
    before = _panels(list(movie))
    after = _panels(list(drop_flicker_array(movie.copy())))
    path = OUT / "cleanup_flicker.png"
    imsave(path, np.concatenate([before, np.full((GAP, before.shape[1], 3), 255, np.uint8), after]),
           check_contrast=False)
    written.append(path)
    return written


if __name__ == "__main__":
    for p in main():
        print(p)
