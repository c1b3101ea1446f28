"""Shared fixtures of the io tests: napari's own CSV writers, without a viewer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="session")
def napari_writers():
    """Make napari's builtin writers available to ``layer.save`` (no Qt needed)."""
    import npe2

    npe2.PluginManager.instance().discover()
    import napari.layers

    return napari.layers


@pytest.fixture
def save_points(napari_writers, tmp_path):
    """Save a Points layer with napari's builtin CSV writer; returns the file path."""

    def _save(data, features=None, name="points.csv") -> Path:
        layer = napari_writers.Points(np.asarray(data, float), features=features)
        written = layer.save(str(tmp_path / name), plugin="napari")
        assert written, "napari did not write the points CSV"
        return Path(written[0])

    return _save


@pytest.fixture
def save_shapes(napari_writers, tmp_path):
    """Save a Shapes layer with napari's builtin CSV writer; returns the file path."""

    def _save(shapes, shape_type="rectangle", name="shapes.csv") -> Path:
        layer = napari_writers.Shapes([np.asarray(s, float) for s in shapes], shape_type=shape_type)
        written = layer.save(str(tmp_path / name), plugin="napari")
        assert written, "napari did not write the shapes CSV"
        return Path(written[0])

    return _save
