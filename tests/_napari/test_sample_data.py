"""Synthetic sample data: determinism, ground-truth story, and loading through napari.

How long the generators take is measured by ``benchmarks/bench_sample_data.py``, not asserted here.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from napari_sam2._napari import sample_data
from napari_sam2._napari.synthetic import make_cells_timelapse, make_ultrasound_clip


def _present(labels: np.ndarray, label: int) -> np.ndarray:
    return np.array([(frame == label).any() for frame in labels])


@pytest.fixture(scope="module")
def cells():
    return make_cells_timelapse()


@pytest.fixture(scope="module")
def ultrasound():
    return make_ultrasound_clip()


@pytest.mark.parametrize("generator", [make_cells_timelapse, make_ultrasound_clip])
def test_generators_are_deterministic(generator):
    first = generator()
    second = generator()
    np.testing.assert_array_equal(first.image, second.image)
    np.testing.assert_array_equal(first.labels, second.labels)
    other = generator(seed=1)
    assert not np.array_equal(first.image, other.image)


def test_cells_shapes_and_dtypes(cells):
    assert cells.image.shape == (40, 256, 256)
    assert cells.image.dtype == np.uint16
    assert cells.labels.shape == cells.image.shape
    assert np.issubdtype(cells.labels.dtype, np.integer)
    # fluorescence-like: noisy background well above zero, cells clearly brighter
    bg = cells.image[cells.labels == 0]
    fg = cells.image[cells.labels > 0]
    assert 50 < np.median(bg) < 400
    assert np.median(fg) > np.median(bg) + 400
    assert bg.std() > 5  # there is noise


def test_cells_division(cells):
    ev = cells.events["divides"]
    parent, (d1, d2), frame = ev["parent"], ev["daughters"], ev["frame"]
    assert 0 < frame < len(cells.labels)
    p, a, b = (_present(cells.labels, i) for i in (parent, d1, d2))
    assert p[:frame].all() and not p[frame:].any()
    assert not a[:frame].any() and a[frame:].all()
    assert not b[:frame].any() and b[frame:].all()
    # daughters appear where the parent was, with new ids
    parent_mask = cells.labels[frame - 1] == parent
    daughters = np.isin(cells.labels[frame], (d1, d2))
    assert (parent_mask & daughters).sum() > 0.5 * daughters.sum()
    # ... and move apart afterwards
    c1, c2 = (np.array(ndi.center_of_mass(cells.labels[-1] == i)) for i in (d1, d2))
    e1, e2 = (np.array(ndi.center_of_mass(cells.labels[frame] == i)) for i in (d1, d2))
    assert np.linalg.norm(c1 - c2) > np.linalg.norm(e1 - e2) + 5


def test_cells_leave_and_enter(cells):
    leaving = cells.events["leaves"]["label"]
    entering = cells.events["enters"]["label"]
    p_leave, p_enter = _present(cells.labels, leaving), _present(cells.labels, entering)
    assert p_leave[0] and not p_leave[-1]
    last = int(np.flatnonzero(p_leave).max())
    assert not p_leave[last + 1 :].any(), "a label that left must not come back"
    # it leaves through the border: its last mask touches the right edge
    assert (cells.labels[last][:, -1] == leaving).any()
    assert not p_enter[0] and p_enter[-1]
    first = int(np.flatnonzero(p_enter).min())
    assert p_enter[first:].all()
    assert (cells.labels[first][0, :] == entering).any()


def test_cells_touch_and_ids_are_consistent(cells):
    a, b = cells.events["touch"]["labels"]
    touching = [
        (ndi.binary_dilation(frame == a) & (frame == b)).any() for frame in cells.labels
    ]
    assert not touching[0] and touching[-1]
    # ids are consistent: each id's centroid moves smoothly (no swaps between frames)
    for label in np.unique(cells.labels[cells.labels > 0]):
        present = _present(cells.labels, label)
        centers = np.array(
            [ndi.center_of_mass(cells.labels[t] == label) for t in np.flatnonzero(present)]
        )
        steps = np.linalg.norm(np.diff(centers, axis=0), axis=1)
        assert steps.max() < 8, f"label {label} jumps {steps.max():.1f} px between frames"


def test_ultrasound_shapes_speckle_and_fan(ultrasound):
    img, lab = ultrasound.image, ultrasound.labels
    assert img.shape == (48, 256, 256) and img.dtype == np.uint8
    assert lab.shape == img.shape and set(np.unique(lab)) == {0, 1}
    fan = ultrasound.events["fan_mask"]
    assert 0.3 < fan.mean() < 0.9
    assert (img[:, ~fan] == 0).all(), "nothing is imaged outside the fan"
    tissue = img[0][fan & (lab[0] == 0)].astype(float)
    cavity = img[0][lab[0] == 1].astype(float)
    assert cavity.mean() < tissue.mean() - 50, "the cavity is dark"
    assert tissue.std() / tissue.mean() > 0.15, "speckle gives strong local variation"
    # speckle changes over time but stays correlated
    r = np.corrcoef(img[0][fan].astype(float), img[1][fan].astype(float))[0, 1]
    assert 0.2 < r < 0.98


def test_ultrasound_cavity_pulsates(ultrasound):
    area = ultrasound.labels.reshape(len(ultrasound.labels), -1).sum(axis=1).astype(float)
    assert area.max() > 2.0 * area.min() > 0
    spectrum = np.abs(np.fft.rfft(area - area.mean()))
    period = len(area) / np.argmax(spectrum)
    assert period == pytest.approx(ultrasound.events["cavity"]["period_frames"], rel=0.1)
    # the cavity is a single connected blob in every frame
    for frame in ultrasound.labels:
        assert ndi.label(frame == 1)[1] == 1


@pytest.mark.parametrize(
    ("func", "names"),
    [
        (sample_data.cells_timelapse, ("cells", "cells ground truth")),
        (sample_data.ultrasound_clip, ("ultrasound", "ultrasound ground truth")),
    ],
)
def test_layer_data_tuples(func, names):
    layers = func()
    assert [kind for _, _, kind in layers] == ["image", "labels"]
    assert tuple(kw["name"] for _, kw, _ in layers) == names
    for data, kwargs, _ in layers:
        assert kwargs["metadata"]["synthetic"] is True
        assert data.ndim == 3


@pytest.mark.gui
def test_open_sample_in_viewer(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-sam2", "cells_timelapse")
    assert [layer.name for layer in viewer.layers] == ["cells", "cells ground truth"]
    image, labels = viewer.layers
    assert image.data.shape == (40, 256, 256) and image.data.dtype == np.uint16
    assert labels.data.shape == image.data.shape
    assert image.metadata["synthetic"] is True
    assert tuple(image.axis_labels) == ("t", "y", "x")  # napari >= 0.5 (a dependency) has axis labels
    viewer.open_sample("napari-sam2", "ultrasound_clip")
    assert [layer.name for layer in viewer.layers][-2:] == ["ultrasound", "ultrasound ground truth"]
