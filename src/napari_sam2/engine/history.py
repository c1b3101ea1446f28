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

import io
import tempfile
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Iterator

import numpy as np
import torch

if TYPE_CHECKING:
    from .memory_bank import FrameState

_TENSOR_FIELDS = ("low_res", "obj_ptr", "score", "maskmem", "candidates", "candidate_iou", "candidate_ptrs")
_ABSENT = -1  # slot code of FrameStates._slots for "not held"; >= 0 is a HistoryStore record


def _layout(state: "FrameState") -> tuple:
    return tuple((name, t.dtype, tuple(t.shape)) for name in _TENSOR_FIELDS
                 if (t := getattr(state, name)) is not None)


def _nbytes(layout: tuple) -> int:
    return 16 + sum(int(np.prod(shape)) * torch.empty((), dtype=dt).element_size() for _, dt, shape in layout)


class _Records:
    """Fixed-size records of one layout in one file-like (RAM or an anonymous temporary file).

    Freed records are reused, so the file only grows to the most records ever held at once, and a
    RAM buffer is one contiguous block (no heap fragmentation from many small tensors).
    """

    def __init__(self, layout: tuple, file) -> None:
        self.layout = layout
        self.record_bytes = _nbytes(layout)
        self.file = file
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


_RAM, _DISK = 0, 1


class HistoryStore:
    """Host storage of frame states that are not on the device: RAM up to a budget, then disk.

    One store serves a whole session (all sequences and objects), so ``ram_bytes`` bounds the
    session's history in RAM whatever the number of objects and frames. A state's slot code packs
    (record index, tier, records id).
    """

    _ID_BITS = 8

    def __init__(self, ram_bytes: int, spill_dir: str | None = None) -> None:
        if ram_bytes < 0:
            raise ValueError("ram_bytes must be >= 0")
        self.ram_budget = int(ram_bytes)
        self.spill_dir = spill_dir
        self._lru: OrderedDict[tuple[int, int], tuple["FrameStates", int]] = OrderedDict()
        self._ram_bytes = 0
        self._records: dict[tuple[int, tuple], int] = {}
        self._by_id: list[_Records] = []
        self._lock = threading.Lock()

    def _records_for(self, tier: int, layout: tuple) -> int:
        key = (tier, layout)
        if key not in self._records:
            file = io.BytesIO() if tier == _RAM else tempfile.TemporaryFile(
                prefix="napari-sam2-history-", dir=self.spill_dir)
            self._records[key] = len(self._by_id)
            self._by_id.append(_Records(layout, file))
        return self._records[key]

    def _code(self, index: int, tier: int, rid: int) -> int:
        return (((index << 1) | tier) << self._ID_BITS) | rid

    def _split(self, code: int) -> tuple[int, int, _Records]:
        rid = code & ((1 << self._ID_BITS) - 1)
        return code >> (self._ID_BITS + 1), (code >> self._ID_BITS) & 1, self._by_id[rid]

    def put(self, owner: "FrameStates", frame: int, state: "FrameState") -> int:
        """Keep ``state``; returns the slot code the owner records (other owners' codes may change)."""
        layout = _layout(state)
        size = _nbytes(layout)
        with self._lock:
            if size > self.ram_budget:
                rid = self._records_for(_DISK, layout)
                return self._code(self._by_id[rid].write(state), _DISK, rid)
            while self._ram_bytes + size > self.ram_budget:
                self._spill_oldest()
            rid = self._records_for(_RAM, layout)
            code = self._code(self._by_id[rid].write(state), _RAM, rid)
            self._lru[(id(owner), frame)] = (owner, frame)
            self._ram_bytes += size
            return code

    def _spill_oldest(self) -> None:
        """Move the least recently stored RAM record to the disk tier."""
        _, (owner, frame) = self._lru.popitem(last=False)
        index, _, ram = self._split(int(owner._slots[frame]))
        fields = ram.read(index)
        ram.free.append(index)
        self._ram_bytes -= ram.record_bytes
        disk = self._records_for(_DISK, ram.layout)
        from .memory_bank import FrameState

        owner._slots[frame] = self._code(self._by_id[disk].write(FrameState(**fields)), _DISK, disk)

    def _release(self, owner: "FrameStates", frame: int, code: int) -> tuple[int, _Records]:
        index, tier, rec = self._split(code)
        if tier == _RAM:
            del self._lru[(id(owner), frame)]
            self._ram_bytes -= rec.record_bytes
        rec.free.append(index)
        return index, rec

    def take(self, owner: "FrameStates", frame: int, code: int) -> "FrameState":
        """Remove a state from the store and return it (on the CPU)."""
        from .memory_bank import FrameState

        with self._lock:
            index, rec = self._release(owner, frame, code)
            return FrameState(**rec.read(index))

    def read(self, code: int) -> "FrameState":
        """A copy of a stored state (on the CPU); the store keeps it."""
        from .memory_bank import FrameState

        with self._lock:
            index, _, rec = self._split(code)
            return FrameState(**rec.read(index))

    def discard(self, owner: "FrameStates", frame: int, code: int) -> None:
        with self._lock:
            self._release(owner, frame, code)

    @property
    def ram_bytes(self) -> int:
        return self._ram_bytes

    @property
    def disk_bytes(self) -> int:
        return sum(r.nbytes for (tier, _), rid in self._records.items() if tier == _DISK
                   for r in (self._by_id[rid],))

    def close(self) -> None:
        with self._lock:
            self._lru.clear()
            self._ram_bytes = 0
            for r in self._by_id:
                r.close()
            self._records.clear()
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

    def grow(self, n: int) -> None:
        """Hold ``n`` frames (a growing stream); frames added are not held."""
        if n > len(self._slots):
            self._slots = np.concatenate([self._slots, np.full(n - len(self._slots), _ABSENT, np.int64)])

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

    def peek(self, frame: int) -> "FrameState | None":
        """The state on ``frame`` for reading only: a stored one stays in the store (a CPU copy)."""
        st = self.hot.get(frame)
        if st is not None or not 0 <= frame < len(self._slots) or self._slots[frame] == _ABSENT:
            return st
        return self.store.read(int(self._slots[frame]))

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

    def discard(self, frame: int) -> None:
        """Forget ``frame``'s state without reading it back from the store."""
        self.hot.pop(frame, None)
        if 0 <= frame < len(self._slots):
            self._drop_cold(frame)

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
