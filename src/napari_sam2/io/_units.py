"""Length units: one spelling per unit, whatever the file wrote.

ImageJ writes ``micron``, ``um`` or the escaped ``\\u00B5m``; OME writes ``µm``. The
plugin keeps the OME symbols (what napari shows and pint parses) and converts to
the ASCII spelling ImageJ understands when writing.
"""

from __future__ import annotations

# canonical symbol -> size in micrometres
_MICRONS: dict[str, float] = {
    "pm": 1e-6,
    "Å": 1e-4,
    "nm": 1e-3,
    "µm": 1.0,
    "mm": 1e3,
    "cm": 1e4,
    "m": 1e6,
    "in": 25400.0,
}

_ALIASES: dict[str, str] = {
    "picometer": "pm",
    "angstrom": "Å",
    "\\u00c5": "Å",
    "nanometer": "nm",
    "nanometre": "nm",
    "micron": "µm",
    "microns": "µm",
    "micrometer": "µm",
    "micrometre": "µm",
    "um": "µm",
    "μm": "µm",  # greek mu
    "\\u00b5m": "µm",  # ImageJ's escaped micro sign
    "millimeter": "mm",
    "millimetre": "mm",
    "centimeter": "cm",
    "centimetre": "cm",
    "meter": "m",
    "metre": "m",
    "inch": "in",
    "inches": "in",
}

_UNCALIBRATED = {"", "pixel", "pixels", "px", "none"}


def normalize_unit(unit: object) -> str | None:
    """Canonical symbol of a length unit (``"µm"``, ``"nm"``...), None if uncalibrated.

    Unknown spellings are returned stripped but otherwise unchanged.
    """
    if unit is None:
        return None
    text = str(unit).strip()
    key = text.lower()
    if key in _UNCALIBRATED:
        return None
    if text in _MICRONS:
        return text
    return _ALIASES.get(key, text)


def to_microns(unit: str | None) -> float | None:
    """Size of one ``unit`` in micrometres, None when the unit is unknown."""
    canonical = normalize_unit(unit)
    return None if canonical is None else _MICRONS.get(canonical)


def convert(value: float, unit: str | None, target: str | None) -> float | None:
    """``value`` expressed in ``unit``, converted to ``target``; None if not convertible."""
    if normalize_unit(unit) == normalize_unit(target):
        return value
    src, dst = to_microns(unit), to_microns(target)
    if src is None or dst is None:
        return None
    return value * src / dst


def ascii_unit(unit: str | None) -> str | None:
    """ASCII spelling for ImageJ descriptions and CSV headers (``µm`` -> ``um``)."""
    canonical = normalize_unit(unit)
    if canonical is None:
        return None
    return canonical.replace("µ", "u").replace("Å", "A")
