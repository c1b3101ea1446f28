"""File input/output of napari-sam2, independent of any GUI.

* :func:`read_stack` opens TIFF / OME-TIFF / ImageJ / ``.npy`` stacks, video clips (PyAV), DICOM
  cines and series, folders of 2D images and zarr / OME-Zarr lazily (``docs/io.md``).
* :func:`read_prompts` reads napari Points / Shapes CSVs and label TIFFs as prompts.
* :class:`LabelsTiffWriter` streams label frames to one calibrated, compressed TIFF;
  :class:`LabelsZarrWriter` to a chunked OME-Zarr label image, in any order.
* :class:`ObjectTable` and :func:`tracks_from_table` summarise results per object.
* :func:`write_ctc` exports Cell Tracking Challenge masks and track files.
"""

from .ctc import CtcTrack, write_ctc
from .labels_writer import LabelsTiffWriter, labels_dtype
from .labels_zarr import LabelsZarrWriter
from .prompt_files import read_points_csv, read_prompts, read_shapes_csv
from .prompt_labels import read_label_prompts
from .stack import Stack, guess_axes, read_stack
from .table import ObjectTable
from .tracks import tracks_from_table

__all__ = [
    "CtcTrack",
    "LabelsTiffWriter",
    "LabelsZarrWriter",
    "ObjectTable",
    "Stack",
    "guess_axes",
    "labels_dtype",
    "read_label_prompts",
    "read_points_csv",
    "read_prompts",
    "read_shapes_csv",
    "read_stack",
    "tracks_from_table",
    "write_ctc",
]
