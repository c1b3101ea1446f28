"""Open a video file (MP4, MOV, AVI, MKV, WebM) lazily and frame-accurately with PyAV.

Opening demuxes the packets once (no decoding) to index the frames in presentation
order; indexing ``Stack.data`` decodes only what it needs: a seek to the last keyframe
at or before the frame, then decoding forward, matching frames by time stamp (so
B-frames and variable frame rates give the right frame). Sequential reading keeps
decoding forward without seeking, about one decode per frame, and a few recent frames
are cached. Clips whose sampled frames are all grey (R == G == B, e.g. ultrasound) read
as (T, Y, X); others as (T, Y, X, C) RGB. Rotation metadata is ignored (frames read as
stored), and so are audio and subtitle streams.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError
from ._frame_array import FramesArrayLike
from ._video_index import (
    PacketIndex, build_index, damaged, import_av, open_container, video_stack,
)

if TYPE_CHECKING:  # for annotations only: stack.py imports this module (no import cycle)
    from .stack import Stack

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm")

CACHE_FRAMES, CACHE_BYTES = 16, 64 * 2**20  #: decoded frames kept for re-reading: count, bytes
#: decode forward (not seek) when the target's keyframe lies at most this far past the decoder
FORWARD_REACH = 4
#: key frames decoded at open to decide whether the clip is grey
GREY_SAMPLES = 5


def read_video(path: str | Path) -> Stack:
    """Open a video file lazily as a (T, Y, X, C) RGB or (T, Y, X) grey uint8 stack."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"Video file not found: {path}; check the path.")
    if path.is_dir():
        raise InputError(f"{path} is a folder; give the path of a video file.")
    container = open_container(path)
    try:
        frames, notes = _open_frames(path, container)
    except BaseException:
        container.close()
        raise
    return video_stack(path, frames, notes)


def _open_frames(path: Path, container: Any) -> tuple[VideoFrames, list[str]]:
    if not container.streams.video:
        raise InputError(f"{path.name} holds no video stream (audio only?); choose a video file.")
    stream = container.streams.video[0]
    index = build_index(container, stream, path)
    if len(index.pts) == 0:
        raise InputError(f"{path.name} holds no video frames: it is empty or corrupt; export it again.")
    frames = VideoFrames(path, container, stream, index)
    frames._check_order()
    notes: list[str] = []
    if index.suspect:
        n = frames.readable_prefix()
        if n == 0:
            raise InputError(
                f"No frame of {path.name} can be decoded: the file is truncated or corrupt; "
                "export it again or copy it again from the original."
            )
        if n < len(index.pts) or index.ends_early:
            frames._set_count(n)
            notes.append(f"{path.name} is cut short: frames 0-{n - 1} are readable, the rest is lost.")
    frames._decide_grey()
    return frames, notes


class VideoFrames(FramesArrayLike):
    """Read-only, thread-safe array-like over the frames of a video stream.

    ``shape`` is (T, Y, X, 3) RGB or (T, Y, X) grey, ``dtype`` uint8. Indexing takes
    ints, slices, Ellipsis and integer arrays on T, and ints or slices on the other
    axes; only the frames asked for are decoded. One lock serialises decoding, so
    napari's display thread and a worker may index it at once.
    """

    def __init__(self, path: Path, container: Any, stream: Any, index: PacketIndex) -> None:
        self._path = Path(path)
        self._container = container
        self._stream = stream
        self._index = index
        self._n = len(index.pts)
        self._lock = threading.RLock()
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._decoder: Any = None  # generator of decoded frames after the last seek
        self._at = -1  # presentation position of the decoder's last frame
        self._by_count = False  # number frames by output order, not pts (see _check_order)
        self._next = 0  # position of the next frame out of the decoder, when numbering by count
        self._before = -1  # the last frame decoded before the one asked for
        self._grey = False
        self.dtype = np.dtype(np.uint8)
        self.shape: tuple[int, ...] = (self._n, stream.codec_context.height, stream.codec_context.width, 3)

    # -- array protocol -------------------------------------------------------------------
    def __repr__(self) -> str:
        return f"VideoFrames(shape={self.shape}, dtype={self.dtype}, file={str(self._path)!r})"

    def __dask_tokenize__(self) -> tuple:
        st = os.stat(self._path)
        return ("VideoFrames", str(self._path), st.st_size, st.st_mtime_ns, self.shape)

    def close(self) -> None:
        """Close the file; the frames cannot be indexed afterwards."""
        with self._lock:
            if self._container is not None:
                self._container.close()
            self._container = self._decoder = None
            self._cache.clear()

    # -- decoding -------------------------------------------------------------------------
    def frame(self, k: int) -> np.ndarray:
        """Frame ``k`` (0 <= k < len) as decoded, read-only: (Y, X, 3), or (Y, X) when grey."""
        if not 0 <= k < self._n:
            raise IndexError(f"frame {k} is out of range for a video of {self._n} frames")
        with self._lock:
            rgb = self._rgb(k)
            return rgb[..., 0] if self._grey else rgb

    def _rgb(self, k: int) -> np.ndarray:
        if self._container is None:
            raise ValueError(f"{self!r} is closed")
        if k in self._cache:
            self._cache.move_to_end(k)
            return self._cache[k]
        index = self._index
        pos = index.key_at_or_before(k)
        found = None
        if self._decoder is not None and self._at < k and int(index.keys[pos]) - self._at <= FORWARD_REACH:
            found = self._decode_to(k)
        for back in range(pos, max(pos - 3, -1), -1):  # on a miss (open-GOP leading frame): earlier
            if found is not None:
                break
            self._seek(int(index.keys[back]))
            found = self._decode_to(k)
        if found is None:
            raise damaged(self._path.name, k, None, self._before)
        rgb = found.to_ndarray(format="rgb24")
        rgb.setflags(write=False)
        self._cache[k] = rgb
        budget = max(1, min(CACHE_FRAMES, CACHE_BYTES // max(rgb.nbytes, 1)))
        while len(self._cache) > budget:
            self._cache.popitem(last=False)
        return rgb

    def _seek(self, key_pos: int) -> None:
        pts = int(self._index.pts[key_pos])
        self._container.seek(pts, stream=self._stream, backward=True, any_frame=False)
        self._decoder = self._frames()
        self._at, self._next = -1, key_pos

    def _frames(self, tolerant: bool = False) -> Any:
        """Decoded frames from the last seek on; the lost tail of a cut file is skipped.

        ``tolerant`` skips every packet that fails to decode (to find what a cut file holds).
        """
        av = import_av()
        cut = tolerant or self._n < len(self._index.pts) or bool(self._index.suspect)
        packets = iter(self._container.demux(self._stream))
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except (av.FFmpegError, OSError):
                if cut:
                    return  # the demuxer gave up at the cut
                raise
            try:
                decoded = packet.decode()
            except av.FFmpegError:
                at = self._index.position_of(packet)
                if not tolerant and (not cut or (packet.size and at is not None and at < self._n)):
                    raise
                continue
            for frame in decoded:
                at = self._next if self._by_count else self._index.position_of(frame)
                self._next += 1
                yield at, frame

    def _decode_to(self, k: int) -> Any:
        """Decode forward to frame ``k``; None when the decoder passes it or ends."""
        av = import_av()
        self._before = self._at
        try:
            for at, frame in self._decoder:
                if at is None:
                    continue
                self._at = at
                if at < k:
                    self._before = at
                if at == k:
                    return frame
                if at > k:
                    return None
        except av.FFmpegError as exc:
            self._decoder = None
            self._at = -1
            raise damaged(self._path.name, k, exc, self._before) from exc
        self._decoder = None
        return None

    def readable_prefix(self) -> int:
        """How many leading frames decode, checked from the tail (for a file cut short)."""
        keys = self._index.keys
        with self._lock:
            last = max(len(keys) - 2, 0)
            for pos in sorted({last, max(last - 1, 0), max(last - 2, 0), 0}, reverse=True):
                start = int(keys[pos])
                self._seek(start)
                seen = {at for at, _ in self._frames(tolerant=True)}
                self._decoder = None
                n = start
                while n in seen:
                    n += 1
                if n > start:
                    return n
            return 0

    def _check_order(self) -> None:
        """Number frames by decoder output order when their pts do not rise (H.264 in AVI).

        AVI stores decode-order counters, not presentation times; the decoder still outputs
        frames in presentation order, so from a keyframe of a closed GOP the count is the
        position. Open GOPs break that: the first GOP is checked and such files refused.
        """
        with self._lock:
            self._seek(0)  # tolerant: a damaged frame here is reported when it is read
            stamps = [frame.pts for _, (_, frame) in zip(range(8), self._frames(tolerant=True))]
            self._by_count = any(b is None or a is None or b <= a for a, b in zip(stamps, stamps[1:]))
            keys, ok = self._index.keys, True
            if self._by_count and len(keys) > 1:
                self._seek(0)
                for at, frame in self._frames(tolerant=True):  # the 2nd keyframe must come out where sent in
                    if (at and frame.key_frame) or at > keys[1] + 32:
                        ok = at == keys[1] or not frame.key_frame
                        break
            self._decoder = None
        if not ok:
            raise InputError(
                f"{self._path.name} stores B-frames without presentation times (as H.264 in AVI) and "
                f"open GOPs, so its frames cannot be found exactly; convert it to MP4 (e.g. ffmpeg -i "
                f"{self._path.name} -c:v libx264 out.mp4)."
            )

    def _set_count(self, n: int) -> None:
        self._n = n
        self.shape = (n,) + self.shape[1:]

    def _decide_grey(self) -> None:
        """Grey when every sampled keyframe (spread over the clip) has R == G == B."""
        keys = self._index.keys[self._index.keys < self._n]
        spread = np.linspace(0, len(keys) - 1, min(GREY_SAMPLES, len(keys))).round().astype(int)
        grey = True
        with self._lock:
            for k in np.unique(keys[spread]):
                rgb = self._rgb(int(k))
                red = rgb[..., 0]
                grey = grey and bool((red == rgb[..., 1]).all() and (red == rgb[..., 2]).all())
            self._grey = grey
            self.shape = (self._n, rgb.shape[0], rgb.shape[1]) + (() if grey else (3,))
