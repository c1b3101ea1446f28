"""Every tracked frame's state, kept exactly, with bounded device and host memory.

The official predictor keeps each object's output on every frame it ever processed (memory
features, object pointer, mask logits), so a correction or a re-propagation in the middle of a
long video sees the full history of the frames before it. We keep the same history, so results are
the same, but only frames that attention is about to use stay on the compute device
(:class:`FrameStates`'s "hot" part). The others move to a :class:`HistoryStore`: host RAM up to
``ram_bytes`` (least recently used first out), then an anonymous temporary file. The file has no
name on disk, so the operating system deletes it when the session closes or the process ends,
even when it is killed.

Per frame and object the store keeps the mask logits (fp32, 256 KiB at 1024 px), the memory
features (bf16, 512 KiB at 1024 px), the pointer and the scores; 48 KiB per frame at 256 px.
"""

from __future__ import annotations

import tempfile
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Iterator

import numpy as np
import torch

if TYPE_CHECKING:
    from .memory_bank import FrameState

_TENSOR_FIELDS = ("low_res", "obj_ptr", "score", "maskmem", "candidates", "candidate_iou", "candidate_ptrs")
_ABSENT, _IN_RAM = -1, -2  # slot codes of FrameStates._slots; >= 0 is a record number on disk


def _layout(state: "FrameState") -> tuple:
    return tuple((name, t.dtype, tuple(t.shape)) for name in _TENSOR_FIELDS
                 if (t := getattr(state, name)) is not None)


def _nbytes(layout: tuple) -> int:
    return 16 + sum(int(np.prod(shape)) * torch.empty((), dtype=dt).element_size() for _, dt, shape in layout)


class _SpillFile:
    """Fixed-size records of one layout in one anonymous temporary file; freed records are reused."""

    def __init__(self, layout: tuple, directory: str | None) -> None:
        self.layout = layout
        self.record_bytes = _nbytes(layout)
        self.file = tempfile.TemporaryFile(prefix="napari-sam2-history-", dir=directory)
        self.free: list[int] = []
        self.count = 0

    def write(self, state: "FrameState") -> int:
        index = self.free.pop() if self.free else self.count
        self.count = max(self.count, index + 1)
        header = np.array([state.iou, -1 if state.choice is None else state.choice], np.float64).tobytes()
        parts = [header] + [getattr(state, name).detach().cpu().contiguous().view(torch.uint8).numpy().tobytes()
                            for name, _, _ in self.layout]
        self.file.seek(index * self.record_bytes)
        self.file.write(b"".join(parts))
        return index

    def read(self, index: int) -> dict:
        self.file.seek(index * self.record_bytes)
        buf = bytearray(self.file.read(self.record_bytes))
        iou, choice = np.frombuffer(buf[:16], np.float64)
        out: dict = {"iou": float(iou), "choice": None if choice < 0 else int(choice)}
        pos = 16
        for name, dtype, shape in self.layout:
            n = int(np.prod(shape)) * torch.empty((), dtype=dtype).element_size()
            raw = torch.frombuffer(buf[pos : pos + n], dtype=torch.uint8)
            out[name] = raw.view(dtype).reshape(shape).clone()
            pos += n
        return out

    @property
    def nbytes(self) -> int:
        return (self.count - len(self.free)) * self.record_bytes

    def close(self) -> None:
        self.file.close()


class HistoryStore:
    """Host storage of frame states that are not on the device: RAM up to a budget, then disk.

    One store serves a whole session (all sequences and objects), so ``ram_bytes`` bounds the
    session's history in RAM whatever the number of objects and frames.
    """

    def __init__(self, ram_bytes: int, spill_dir: str | None = None) -> None:
        if ram_bytes < 0:
            raise ValueError("ram_bytes must be >= 0")
        self.ram_budget = int(ram_bytes)
        self.spill_dir = spill_dir
        self._ram: OrderedDict[tuple[int, int], tuple["FrameStates", "FrameState", int]] = OrderedDict()
        self._ram_bytes = 0
        self._files: dict[tuple, tuple[int, _SpillFile]] = {}
        self._by_id: list[_SpillFile] = []
        self._lock = threading.Lock()

    # a disk slot packs (file id, record index) into one int64
    _ID_BITS = 8

    def put(self, owner: "FrameStates", frame: int, state: "FrameState") -> int:
        """Keep ``state`` (moved to the CPU); returns the slot code the owner records."""
        cpu = state.to_device(torch.device("cpu"))
        size = cpu.nbytes
        with self._lock:
            self._ram[(id(owner), frame)] = (owner, cpu, size)
            self._ram_bytes += size
            self._evict()
        return _IN_RAM if (id(owner), frame) in self._ram else owner._slots[frame]

    def _evict(self) -> None:
        while self._ram and self._ram_bytes > self.ram_budget:
            (_, frame), (owner, st, size) = self._ram.popitem(last=False)
            self._ram_bytes -= size
            owner._slots[frame] = self._write(st)

    def _write(self, state: "FrameState") -> int:
        layout = _layout(state)
        if layout not in self._files:
            f = _SpillFile(layout, self.spill_dir)
            self._files[layout] = (len(self._by_id), f)
            self._by_id.append(f)
        fid, f = self._files[layout]
        return (f.write(state) << self._ID_BITS) | fid

    def take(self, owner: "FrameStates", frame: int, slot: int) -> "FrameState":
        """Remove a state from the store and return it (on the CPU)."""
        from .memory_bank import FrameState

        with self._lock:
            if slot == _IN_RAM:
                _, st, size = self._ram.pop((id(owner), frame))
                self._ram_bytes -= size
                return st
            f = self._by_id[slot & ((1 << self._ID_BITS) - 1)]
            index = slot >> self._ID_BITS
            fields = f.read(index)
            f.free.append(index)
        return FrameState(**fields)

    def discard(self, owner: "FrameStates", frame: int, slot: int) -> None:
        with self._lock:
            if slot == _IN_RAM:
                _, _, size = self._ram.pop((id(owner), frame))
                self._ram_bytes -= size
            elif slot >= 0:
                f = self._by_id[slot & ((1 << self._ID_BITS) - 1)]
                f.free.append(slot >> self._ID_BITS)

    @property
    def ram_bytes(self) -> int:
        return self._ram_bytes

    @property
    def disk_bytes(self) -> int:
        return sum(f.nbytes for f in self._by_id)

    def close(self) -> None:
        with self._lock:
            self._ram.clear()
            self._ram_bytes = 0
            for f in self._by_id:
                f.close()
            self._files.clear()
            self._by_id.clear()


class FrameStates:
    """One object's states by frame: a few on the device ("hot"), the rest in a HistoryStore.

    Acts like a dict ``frame -> FrameState``; reading a stored frame brings it back to the
    device. Host bookkeeping is one preallocated int64 per frame of the sequence.
    """

    def __init__(self, num_frames: int, store: HistoryStore, device: torch.device) -> None:
        self.store = store
        self.device = device
        self.hot: dict[int, "FrameState"] = {}
        self._slots = np.full(num_frames, _ABSENT, np.int64)

    def __contains__(self, frame: int) -> bool:
        return frame in self.hot or (0 <= frame < len(self._slots) and self._slots[frame] != _ABSENT)

    def get(self, frame: int, default=None) -> "FrameState | None":
        st = self.hot.get(frame)
        if st is not None:
            return st
        if not 0 <= frame < len(self._slots) or self._slots[frame] == _ABSENT:
            return default
        slot = int(self._slots[frame])
        self._slots[frame] = _ABSENT
        st = self.store.take(self, frame, slot).to_device(self.device)
        self.hot[frame] = st
        return st

    def __getitem__(self, frame: int) -> "FrameState":
        st = self.get(frame)
        if st is None:
            raise KeyError(frame)
        return st

    def __setitem__(self, frame: int, state: "FrameState") -> None:
        self._drop_cold(frame)
        self.hot[frame] = state

    def pop(self, frame: int, default=None) -> "FrameState | None":
        st = self.get(frame)
        if st is None:
            return default
        del self.hot[frame]
        return st

    def _drop_cold(self, frame: int) -> None:
        slot = int(self._slots[frame])
        if slot != _ABSENT:
            self._slots[frame] = _ABSENT
            self.store.discard(self, frame, slot)

    def frames(self) -> list[int]:
        """All frames held, hot or stored, in increasing order."""
        cold = np.flatnonzero(self._slots != _ABSENT).tolist()
        return sorted(set(cold) | set(self.hot))

    def __iter__(self) -> Iterator[int]:
        return iter(self.frames())

    def __len__(self) -> int:
        return int(np.count_nonzero(self._slots != _ABSENT)) + len(self.hot)

    def __bool__(self) -> bool:
        return bool(self.hot) or bool(np.any(self._slots != _ABSENT))

    def cool(self, keep) -> None:
        """Move hot states whose frame fails ``keep(frame)`` to the store."""
        for frame in [f for f in self.hot if not keep(f)]:
            self._slots[frame] = self.store.put(self, frame, self.hot.pop(frame))

    def clear(self) -> None:
        for frame in np.flatnonzero(self._slots != _ABSENT).tolist():
            self._drop_cold(frame)
        self.hot.clear()

    @property
    def hot_bytes(self) -> int:
        return sum(st.nbytes for st in self.hot.values())
