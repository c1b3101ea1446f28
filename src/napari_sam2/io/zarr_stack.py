"""Zarr arrays and OME-Zarr (NGFF 0.4 / 0.5) images, read lazily chunk by chunk.

A zarr array is indexed in place (only the chunks a frame touches are read), so a
time-lapse larger than memory is never loaded whole. For an OME-Zarr image the
full-resolution level is used unless ``level`` asks for a coarser one (a laptop mode: level
1 is half the size in Y and X); axes, physical scale and units come from its
``multiscales`` metadata. A plain array gets its axes guessed from its shape.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import InputError
from ._units import normalize_unit

ZARR_SUFFIXES = (".zarr", ".ome.zarr")
_TIME_UNITS = {"second": 1.0, "s": 1.0, "millisecond": 1e-3, "ms": 1e-3, "microsecond": 1e-6,
               "minute": 60.0, "min": 60.0, "hour": 3600.0, "h": 3600.0}


def is_zarr(path: Path) -> bool:
    """A zarr v2 or v3 store on disk (a folder with .zarray/.zgroup/zarr.json, or named *.zarr)."""
    if not path.is_dir():
        return False
    if path.name.lower().endswith(ZARR_SUFFIXES):
        return True
    return any((path / n).exists() for n in (".zarray", ".zgroup", "zarr.json"))


def _open(path: Path) -> Any:
    try:
        import zarr
    except ImportError:
        raise InputError(f'Reading {path.name} needs the zarr package: pip install "napari-sam2[zarr]".') from None
    try:
        return zarr.open(str(path), mode="r")
    except Exception as exc:
        raise InputError(f"Cannot open {path} as zarr ({exc}); check that it is a complete zarr store.") from None


def _multiscales(group: Any) -> list | None:
    attrs = dict(group.attrs)
    if "ome" in attrs and isinstance(attrs["ome"], dict):  # NGFF 0.5 (zarr v3)
        attrs = attrs["ome"]
    found = attrs.get("multiscales")
    return found if isinstance(found, list) and found else None


def read_zarr(path: str | Path, *, level: int = 0):
    """Open a zarr array or OME-Zarr image lazily (see module docstring)."""
    import zarr

    from .stack import Stack, guess_axes

    path = Path(path)
    node = _open(path)
    if isinstance(node, zarr.Array):
        if level:
            raise InputError(f"{path.name} is a single zarr array without resolution levels; leave out --level.")
        return Stack(data=node, axes=guess_axes(tuple(node.shape)), path=path,
                     metadata={"format": "zarr"})
    multiscales = _multiscales(node)
    if multiscales is None:
        return _plain_group(node, path, level)
    image = multiscales[0]
    datasets = image.get("datasets") or []
    if not datasets:
        raise InputError(f"{path.name} has OME multiscales metadata without datasets; the image is incomplete.")
    if not 0 <= level < len(datasets):
        raise InputError(f"{path.name} has {len(datasets)} resolution level(s); choose a level between 0 and "
                         f"{len(datasets) - 1}.")
    key = datasets[level]["path"]
    try:
        array = node[key]
    except KeyError:
        raise InputError(f"{path.name}: level {level} ({key!r}) named in its metadata is missing; the image is "
                         "incomplete, copy it again.") from None
    axes, scale, unit, interval = _ome_axes(image, datasets[level], array.ndim, path)
    levels = [tuple(int(n) for n in node[d["path"]].shape) for d in datasets if d["path"] in node]
    return Stack(data=array, axes=axes, scale=scale, unit=unit, path=path, frame_interval=interval,
                 metadata={"format": "ome-zarr", "level": level, "levels": levels, "name": image.get("name")})


def _plain_group(group: Any, path: Path, level: int):
    from .stack import Stack, guess_axes

    arrays = sorted(group.array_keys())
    if not arrays:
        inner = sorted(group.group_keys())
        hint = f" (it holds the groups {', '.join(inner[:5])}: open one of them)" if inner else ""
        raise InputError(f"{path.name} is a zarr group without arrays{hint}; give the path of an array or an "
                         "OME-Zarr image.")
    if len(arrays) > 1:
        raise InputError(f"{path.name} holds several arrays ({', '.join(arrays[:5])}) and no OME metadata saying "
                         f"which is the image; give the path of one, e.g. {path / arrays[0]}.")
    if level:
        raise InputError(f"{path.name} has no resolution levels (no OME multiscales metadata); leave out --level.")
    array = group[arrays[0]]
    return Stack(data=array, axes=guess_axes(tuple(array.shape)), path=path, metadata={"format": "zarr"})


def _ome_axes(image: dict, dataset: dict, ndim: int, path: Path):
    """(axes letters, per-axis scale or None, spatial unit, seconds per frame) of one OME level."""
    axes_meta = image.get("axes")
    if axes_meta is None:  # NGFF 0.1-0.3: TCZYX always
        axes_meta = [{"name": n} for n in "tczyx"[-ndim:]]
    names = [(a["name"] if isinstance(a, dict) else str(a)).upper() for a in axes_meta]
    if len(names) != ndim or not set(names) <= set("TCZYX") or len(set(names)) != ndim:
        raise InputError(f"{path.name}: OME axes {names} do not describe its {ndim}-D array with t, c, z, y, x; "
                         "re-save it with standard axes.")
    scale = [1.0] * ndim
    for transforms in (dataset.get("coordinateTransformations") or [], image.get("coordinateTransformations") or []):
        for t in transforms:
            if t.get("type") == "scale" and len(t.get("scale", [])) == ndim:
                scale = [a * float(b) for a, b in zip(scale, t["scale"])]
    units = {n: (a.get("unit") if isinstance(a, dict) else None) for n, a in zip(names, axes_meta)}
    spatial = [n for n in names if n in "ZYX"]
    unit = normalize_unit(units.get("X") or units.get("Y"))
    interval = None
    if "T" in names:
        t_unit = str(units.get("T") or "").lower()
        factor = _TIME_UNITS.get(t_unit)
        if factor is not None:
            interval = scale[names.index("T")] * factor
    calibrated = unit is not None or any(scale[names.index(n)] != 1.0 for n in spatial)
    per_axis = tuple(1.0 if n in "TC" else scale[i] for i, n in enumerate(names)) if calibrated else None
    return "".join(names), per_axis, unit, interval
