"""Packet index of a video stream, built by demuxing only (no decoding).

The index lists every video packet's presentation time stamp (pts, or dts where the
container gives no pts) and keyframe flag; sorting by pts gives the frames in
presentation order, which decode order is not when the codec uses B-frames. The frame
count comes from this index, never from ``stream.frames`` (missing in Matroska/WebM,
wrong in some AVI/MOV files). The demux pass also notes the signs of a file cut short,
so the reader can check its tail by decoding it. The other parts of ``video`` that do
not decode live here too: opening with clear errors, frame times, index splitting and
building the :class:`Stack`.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError


def import_av() -> Any:
    """PyAV, imported on first use so that napari_sam2.io works without it."""
    try:
        import av
    except ImportError as exc:
        raise InputError(
            'Reading video files needs PyAV; install the video extra: pip install "napari-sam2[video]".'
        ) from exc
    return av


def damaged(name: str, k: int, exc: BaseException | None, good: int) -> InputError:
    """The error for frame ``k`` that does not decode, naming the last good frame before it."""
    why = f" ({exc})" if exc is not None else ""
    before = f"frame {good} is the last good one before it" if good >= 0 else "no frame before it decoded"
    return InputError(
        f"Cannot decode frame {k} of {name}: the file is damaged there{why}; {before}. "
        "Export it again or copy it again from the original."
    )


def open_container(path: Path) -> Any:
    """``av.open(path)``, with one clear sentence for a file that is not (or no longer) a video."""
    av = import_av()
    try:
        return av.open(str(path))
    except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
        if mp4_without_moov(path):
            raise InputError(
                f"{path.name} is truncated or unfinished (its frame table is missing), so it cannot be "
                "indexed; export it again or copy it again from the original."
            ) from exc
        raise InputError(
            f"Cannot read {path.name} as a video: it is not a video file or its header is corrupt; "
            "check the file or export it again (e.g. as MP4 with H.264)."
        ) from exc


@dataclass
class PacketIndex:
    """Frames of one video stream in presentation order.

    ``pts`` holds every packet's time stamp sorted (int64, in ``time_base`` units);
    ``keys`` the presentation positions of keyframes (sorted); ``suspect`` says why
    the file may be cut short (empty when nothing looks wrong); ``ends_early`` is True
    when it surely is (the demuxer failed, or the packets stop before the header says);
    ``expected_frames`` is the count the header promises, when it says (0 otherwise).
    """

    pts: np.ndarray
    keys: np.ndarray
    time_base: Fraction
    suspect: str
    expected_frames: int
    ends_early: bool = False

    def key_at_or_before(self, k: int) -> int:
        """Position in ``keys`` of the last keyframe at or before frame ``k`` (0 if none)."""
        return max(int(np.searchsorted(self.keys, k, side="right")) - 1, 0)

    def position_of(self, item: Any) -> int | None:
        """Presentation position of a decoded frame or packet (the frame at or before its pts)."""
        pts = item.pts if item.pts is not None else item.dts
        if pts is None:
            return None
        return int(np.searchsorted(self.pts, pts, side="right")) - 1


def build_index(container: Any, stream: Any, path: Path) -> PacketIndex:
    """Demux every packet of ``stream`` once and index it; decoding nothing."""
    av = import_av()
    size = os.path.getsize(path)
    stamps: list[int] = []
    keyflags: list[bool] = []
    suspect, early = "", False
    try:
        for packet in container.demux(stream):
            if packet.size == 0:  # the flush packet at the end
                continue
            stamp = packet.pts if packet.pts is not None else packet.dts
            if stamp is None:
                suspect = suspect or "a packet without time stamps"
                continue
            pos = packet.pos if packet.pos is not None else -1
            if packet.is_corrupt or (pos >= 0 and pos + packet.size > size):
                suspect = suspect or "a short or corrupt packet"
            stamps.append(int(stamp))
            keyflags.append(bool(packet.is_keyframe))
    except (av.FFmpegError, OSError) as exc:
        suspect = suspect or f"a demux error ({exc})"
        early = True
    order = np.argsort(np.asarray(stamps, np.int64), kind="stable")
    pts = np.asarray(stamps, np.int64)[order]
    keys = np.flatnonzero(np.asarray(keyflags, bool)[order]) if len(pts) else np.zeros(0, np.int64)
    if len(pts) and (len(keys) == 0 or keys[0] != 0):
        keys = np.concatenate([[0], keys])  # decoding from the start always works
    tb = Fraction(stream.time_base) if stream.time_base else Fraction(1, 1000)
    expected = int(stream.frames or 0)
    short = _ends_early(container, stream, pts, tb, expected) if len(pts) else ""
    early = early or bool(short)
    return PacketIndex(pts, np.asarray(keys, np.int64), tb, suspect or short, expected, early)


def _ends_early(container: Any, stream: Any, pts: np.ndarray, tb: Fraction, expected: int) -> str:
    """Why the packets stop before the container's header says the stream ends ('' if not)."""
    if expected > len(pts):
        return f"the header promises {expected} frames"
    step = float(np.median(np.diff(pts))) * float(tb) if len(pts) > 1 else 0.0
    have = float(pts[-1] - pts[0]) * float(tb) + step
    said = _declared_duration(container, stream, tb)
    if said is not None and step > 0 and said - have > 1.5 * step:
        return f"the header says the stream lasts {said:.2f} s"
    return ""


def _declared_duration(container: Any, stream: Any, tb: Fraction) -> float | None:
    """The stream's duration in seconds as the header states it, when it does."""
    if stream.duration:
        return float(stream.duration * tb)
    tag = (stream.metadata or {}).get("DURATION")  # Matroska writes one per track
    if tag:
        try:
            h, m, s = tag.split(":")
            return int(h) * 3600 + int(m) * 60 + float(s)
        except ValueError:
            pass
    if len(container.streams) == 1 and container.duration:
        return container.duration / 1e6
    return None


def mp4_without_moov(path: Path) -> bool:
    """True for an MP4/MOV file whose 'moov' box (the frame table) is missing.

    That is what a recording stopped before it was finalised, or a download cut short
    before the end of a file whose table is written last, looks like.
    """
    with open(path, "rb") as fh:
        head = fh.read(12)
        if len(head) < 8 or head[4:8] != b"ftyp":
            return False
        size = os.path.getsize(path)
        offset = 0
        while offset + 8 <= size:
            fh.seek(offset)
            box = fh.read(16)
            length, kind = struct.unpack(">I4s", box[:8])
            if kind == b"moov":
                return False
            if length == 1 and len(box) == 16:
                length = struct.unpack(">Q", box[8:16])[0]
            if length < 8:
                break
            offset += length
    return True


def frame_timing(index: PacketIndex, n: int, stream: Any) -> tuple[list[float], float, bool]:
    """Seconds of the first ``n`` frames from the first, frames per second, variable rate?

    The rate is variable when the gaps between frames differ by more than the rounding of
    the time base (3 ticks) and 2 %; its fps is then the mean rate over the clip.
    """
    tb = float(index.time_base)
    times = [float(p - index.pts[0]) * tb for p in index.pts[:n]]
    gaps = np.diff(times) if n > 1 else np.zeros(0)
    vfr = bool(len(gaps) > 1 and np.ptp(gaps) > max(3 * tb, 0.02 * float(np.median(gaps))))
    rate = stream.average_rate or stream.guessed_rate
    fps = float(rate) if rate and not vfr else 0.0
    if not fps and n > 1 and times[-1] > 0:
        fps = (n - 1) / times[-1]
    return times, fps, vfr


def video_stack(path: Path, frames: Any, notes: list[str]) -> Any:
    """The :class:`Stack` of an opened ``VideoFrames``, with frame rate, times and notes."""
    from .stack import Stack

    n = len(frames)
    times, fps, vfr = frame_timing(frames._index, n, frames._stream)
    if vfr:
        notes.append(
            f"{path.name} has a variable frame rate (mean {fps:.3g} fps); each frame's time is in "
            "metadata['frame_times']."
        )
    metadata = {
        "format": "video",
        "container": frames._container.format.name,
        "codec": frames._stream.codec_context.name,
        "fps": fps,
        "frame_times": times,
        "variable_frame_rate": vfr,
        "width": frames.shape[2],
        "height": frames.shape[1],
        "grey": frames.ndim == 3,
    }
    return Stack(
        data=frames,
        axes="TYX" if frames.ndim == 3 else "TYXC",
        path=path,
        _handle=frames,
        frame_interval=1.0 / fps if fps > 0 else None,
        notes=notes,
        metadata=metadata,
    )
