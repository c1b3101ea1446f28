"""``napari-sam2 demo-live``: the live-tracking demo (``_napari/demo_live.py``) as a subcommand.

napari and Qt are imported only when the command runs, so ``napari-sam2 segment`` never pays for them.
"""

from __future__ import annotations

import argparse
from typing import Any


def _positive(kind: type) -> Any:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text!r} must be more than 0")
        return value

    return parse


def add_demo_parser(sub: Any, device_type: Any, image_size_type: Any) -> None:
    """Add ``demo-live`` to the CLI's subcommands (``sub``); the types are the CLI's own checks."""
    demo = sub.add_parser(
        "demo-live", help="watch live tracking: a synthetic acquisition played into napari",
        description="Open napari, play a synthetic fluorescence acquisition into an Image layer at --fps, and "
                    "track a cell live with the SAM 2 widget (Live on). No microscope or data needed.",
        epilog="Model: --model, else sam2.1_hiera_tiny when cached, else a random-weights model (offline, "
               "meaningless masks; the demo says which). See docs/cli.md.",
    )
    demo.add_argument("--fps", type=_positive(float), default=5.0, help="frames a second (default: %(default)s)")
    demo.add_argument("--frames", type=_positive(int), default=200, metavar="N",
                      help="frames to play; the acquisition then stops (default: %(default)s)")
    demo.add_argument("--size", type=_positive(int), default=256, metavar="PX",
                      help="frame size in pixels (default: %(default)s)")
    demo.add_argument("--model", default=None, metavar="NAME_OR_PATH",
                      help="registry name or .pt checkpoint (default: sam2.1_hiera_tiny if cached, else "
                           "the random-weights test model)")
    demo.add_argument("--device", default="auto", type=device_type, help="auto, cpu, cuda[:N] or mps")
    demo.add_argument("--image-size", type=image_size_type, default=None, metavar="N",
                      help="model resolution (default: 512 for a checkpoint, so that a CPU keeps up)")
    demo.add_argument("--exit-when-done", action="store_true", help=argparse.SUPPRESS)  # tests, scripts
    demo.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    demo.set_defaults(func=cmd_demo_live, quiet=False)


def cmd_demo_live(args: argparse.Namespace, parser: argparse.ArgumentParser, console: Any) -> int:
    from ._napari.demo_live import run_demo

    run_demo(args.fps, args.frames, args.size, args.model, args.device, args.image_size,
             exit_when_done=args.exit_when_done, say=console.note)
    return 0
