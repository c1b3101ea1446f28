"""Optional ``torch.compile`` of the heavy parts, with a clean fallback to eager.

``compile_model(model)`` compiles the ``forward`` of the image encoder, the memory attention and
the mask decoder in place (the modules and their parameter names stay as they are, so checkpoints
and parity are unaffected). Compilation is lazy: it happens on the first call of each part, for
each new input shape (image size, number of objects); after a second batch size a part is
recompiled with dynamic shapes, so object counts do not recompile forever. Where compilation is
unavailable (no C++ compiler for the CPU backend, MPS, an unknown backend) the first call logs
one warning naming the reason and the part runs eager from then on: results are the same, only
slower.
"""

from __future__ import annotations

import functools
import logging
import threading
from typing import Any, Callable

import torch

log = logging.getLogger(__name__)

COMPILED_PARTS = ("image_encoder", "memory_attention", "sam_mask_decoder")


class _CompiledOrEager:
    """``forward`` of one part: the compiled function until it fails once, then the eager one."""

    def __init__(self, name: str, eager: Callable, compiled: Callable | None, why: str = "") -> None:
        self.name, self.eager, self.compiled, self.why = name, eager, compiled, why
        self.lock = threading.Lock()
        functools.update_wrapper(self, eager)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        fn = self.compiled
        if fn is None:
            return self.eager(*args, **kwargs)
        try:
            return fn(*args, **kwargs)
        except Exception as err:  # noqa: BLE001 - any compiler failure: warn once, run eager from now on
            with self.lock:
                if self.compiled is not None:
                    self.compiled, self.why = None, f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"
                    log.warning("torch.compile is unavailable for %s (%s); running it eager (same results, "
                                "slower).", self.name, self.why)
            return self.eager(*args, **kwargs)


def compile_model(model: torch.nn.Module, backend: str = "inductor", mode: str | None = None) -> torch.nn.Module:
    """Compile ``model``'s heavy parts in place (see the module docstring); returns ``model``."""
    for name in COMPILED_PARTS:
        part = getattr(model, name)
        eager = part.forward
        eager = getattr(eager, "eager", eager)  # compiling twice wraps the original forward once
        try:
            compiled, why = torch.compile(eager, backend=backend, mode=mode), ""
        except Exception as err:  # noqa: BLE001 - an unknown backend fails here, not on the first call
            compiled, why = None, f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"
            log.warning("torch.compile is unavailable for %s (%s); running it eager (same results, slower).",
                        name, why)
        part.forward = _CompiledOrEager(name, eager, compiled, why)
    return model


def compile_status(model: torch.nn.Module) -> dict[str, str]:
    """Per compiled part: ``"compiled"``, or ``"eager: <reason>"`` after a fallback; empty if never compiled."""
    out = {}
    for name in COMPILED_PARTS:
        fwd = getattr(getattr(model, name), "forward", None)
        if isinstance(fwd, _CompiledOrEager):
            out[name] = "compiled" if fwd.compiled is not None else f"eager: {fwd.why}"
    return out
