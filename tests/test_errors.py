"""One error hierarchy: every user-caused failure is a ``Sam2Error``, and the CLI says so in one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_sam2 import cli, errors
from napari_sam2.api import TEST_MODEL
from napari_sam2.errors import (
    BusyError,
    Cancelled,
    CheckpointError,
    DeviceError,
    DownloadCancelled,
    DownloadError,
    InputError,
    LoadCancelled,
    OutputError,
    PromptError,
    Sam2Error,
)

KINDS = (InputError, PromptError, OutputError, CheckpointError, DownloadError, DeviceError, BusyError, Cancelled,
         DownloadCancelled, LoadCancelled)


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.__name__)
def test_every_kind_is_a_sam2_error(kind):
    assert issubclass(kind, Sam2Error) and issubclass(kind, Exception)
    assert getattr(errors, kind.__name__) is kind


def test_cancelled_kinds_are_not_failures():
    assert issubclass(LoadCancelled, Cancelled) and not issubclass(LoadCancelled, DownloadCancelled)
    assert not issubclass(LoadCancelled, DownloadError)
    assert issubclass(DownloadCancelled, Cancelled) and not issubclass(DownloadCancelled, DownloadError)
    assert issubclass(DownloadError, CheckpointError)
    from napari_sam2.checkpoints import DownloadCancelled as from_checkpoints

    assert from_checkpoints is DownloadCancelled


def test_io_and_model_name_mistakes_raise_sam2_errors(tmp_path):
    from napari_sam2.io import labels_dtype, tracks_from_table, write_ctc
    from napari_sam2.model.configs import get_config

    with pytest.raises(OutputError, match="does not fit in uint32"):
        labels_dtype(2**32)
    write_ctc(tmp_path / "ctc", [np.zeros((4, 4), np.uint8)])
    with pytest.raises(OutputError, match="already holds CTC files .*overwrite=True"):
        write_ctc(tmp_path / "ctc", [np.zeros((4, 4), np.uint8)])
    (tmp_path / "t.csv").write_text("frame,obj_id\n0,1\n")
    with pytest.raises(InputError, match="lacks the columns"):
        tracks_from_table(tmp_path / "t.csv")
    with pytest.raises(CheckpointError, match="Unknown model 'sam2.1_hiera_tinny'; did you mean 'sam2.1_hiera_tiny'"):
        get_config("sam2.1_hiera_tinny")


# ------------------------------------------------------------------------------------- the CLI
@pytest.fixture
def work(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    tifffile.imwrite(tmp_path / "s.tif", rng.integers(0, 255, (3, 32, 40), np.uint8), imagej=True,
                     metadata={"axes": "TYX"})
    (tmp_path / "p.csv").write_text("index,axis-0,axis-1,axis-2\n0,1,10,10\n")
    return tmp_path


def _case(work: Path, case: str) -> tuple[list, int, str]:
    args = ["segment", work / "s.tif", "--prompts", work / "p.csv", "--out", work / "o.tif", "--model", TEST_MODEL]
    if case == "output in the way":
        (work / "results").write_text("a file where the output folder should be")
        args[5] = work / "results" / "o.tif"
        return args, cli.EXIT_ERROR, f"{work / 'results'} is a file, not a folder; choose another --out"
    if case == "unknown model":
        args[-1] = "sam2.1_hiera_tinny"
        return args, cli.EXIT_MODEL, "Unknown model 'sam2.1_hiera_tinny'; did you mean 'sam2.1_hiera_tiny'?"
    (work / "poly.csv").write_text("index,shape-type,vertex-index,axis-0,axis-1,axis-2\n"
                                   "0,polygon,0,1,1,1\n0,polygon,1,1,5,1\n0,polygon,2,1,3,6\n")
    args[3] = work / "poly.csv"
    return args, cli.EXIT_PROMPTS, "poly.csv, line 2: shape 0 is a polygon; only rectangles can be box prompts"


@pytest.mark.parametrize("case", ["output in the way", "unknown model", "bad prompt file"])
def test_cli_reports_a_user_error_in_one_line_with_the_fix(work: Path, capsys, case: str) -> None:
    args, status, message = _case(work, case)
    code = cli.main([str(a) for a in args])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == status, err
    assert len(lines) == 1 and lines[0].startswith("napari-sam2: error: ") and message in lines[0], lines
    assert "Traceback" not in err and "unexpected" not in err and "report it" not in err
    assert not (work / "o.tif").exists()
