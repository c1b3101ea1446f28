"""``napari-sam2 finetune``: fine-tune a SAM 2 model on stacks with label images (``train/finetune.py``).

Each STACK pairs with one ``--labels`` file in order (TIFF, OME-Zarr, folders: whatever ``segment``
reads); instance ids must be consistent over time (e.g. corrected outputs of this plugin). The result
loads with ``load_model(path)``, ``--model path`` and the widget's "Load checkpoint file...".
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .errors import InputError

_TRAIN_PARTS = ("decoder", "memory", "all")


def add_finetune_parser(sub: Any, device_type: Any, image_size_type: Any) -> None:
    """Add ``finetune`` to the CLI's subcommands (``sub``); the types are the CLI's own checks."""
    ft = sub.add_parser(
        "finetune", help="fine-tune a model on your stacks and their label images",
        description="Fine-tune SAM 2 on (T, Y, X[, C]) stacks with (T, Y, X) label images: clips of --clip-len "
                    "frames, prompts sampled from the labels (clicks, boxes, masks, correction clicks), SAM 2's "
                    "losses, memory propagation through the clip. Writes OUT (official key layout), "
                    "OUT.log.csv (losses, validation J and F) and OUT.train.pt (to --resume).",
        epilog="Example: napari-sam2 finetune movie.tif --labels movie_labels.tif --model sam2.1_hiera_tiny "
               "--out my_model.pt --steps 2000. See docs/training.md.",
    )
    ft.add_argument("stacks", nargs="+", type=Path, metavar="STACK")
    ft.add_argument("--labels", nargs="+", type=Path, required=True, metavar="LABELS",
                    help="one label image per STACK, in the same order")
    ft.add_argument("--model", default="sam2.1_hiera_tiny", metavar="NAME_OR_PATH",
                    help="the model to start from: registry name or .pt (default: %(default)s)")
    ft.add_argument("--out", type=Path, required=True, metavar="MODEL.pt")
    ft.add_argument("--train", choices=_TRAIN_PARTS, default="decoder",
                    help="what is trained: the mask decoder, + memory attention / encoder, or all (default: "
                         "%(default)s)")
    ft.add_argument("--steps", type=int, default=1000, help="training steps, one clip each (default: %(default)s)")
    ft.add_argument("--clip-len", type=int, default=4, metavar="K", help="frames per clip (default: %(default)s)")
    ft.add_argument("--objects", type=int, default=1, metavar="B",
                    help="objects per clip, trained together as one batch (default: %(default)s)")
    ft.add_argument("--lr", type=float, default=1e-5, help="AdamW learning rate (default: %(default)s)")
    ft.add_argument("--val-every", type=int, default=100, metavar="N",
                    help="validate and save every N steps (default: %(default)s)")
    ft.add_argument("--resume", action="store_true", help="continue from OUT.train.pt when it exists")
    ft.add_argument("--seed", type=int, default=0)
    ft.add_argument("--device", default="auto", type=device_type, help="auto, cpu, cuda[:N] or mps")
    ft.add_argument("--image-size", type=image_size_type, default=None, metavar="N",
                    help="train at this model resolution (default: the model's own)")
    ft.add_argument("--quiet", action="store_true", help="no progress lines")
    ft.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    ft.set_defaults(func=cmd_finetune)


def _open(path: Path, what: str) -> Any:
    from .io.channel_view import channels_last
    from .io.stack import read_stack

    stack = read_stack(path)
    data, has_c = channels_last(stack)
    if len(data.shape) != (4 if has_c else 3):
        raise InputError(f"{what} {path.name} has axes {stack.axes}; finetune takes (T, Y, X) or (T, Y, X, C) "
                         "stacks (one time or Z axis).")
    return data


def cmd_finetune(args: argparse.Namespace, parser: argparse.ArgumentParser, console: Any) -> int:
    import torch

    from .model.loading import load_model
    from .train import TrainSettings, finetune

    if len(args.stacks) != len(args.labels):
        raise InputError(f"Give one --labels file per stack ({len(args.stacks)} stacks, {len(args.labels)} labels).")
    settings = TrainSettings(steps=args.steps, clip_len=args.clip_len, objects=args.objects, lr=args.lr,
                             train=args.train,
                             val_every=args.val_every, seed=args.seed)
    stacks = [_open(p, "Stack") for p in args.stacks]
    labels = [_open(p, "Labels") for p in args.labels]
    model = load_model(args.model, device=args.device, dtype=torch.float32, image_size=args.image_size)
    console.info(f"fine-tuning {args.model} ({args.train}) on {len(stacks)} stack(s) for {args.steps} steps "
                 f"at {model.image_size} px on {model.device}")

    def progress(step: int, steps: int, row: dict) -> None:
        if step % max(args.val_every // 10, 1) == 0 or step == steps or row["val_J"] == row["val_J"]:
            val = f", val J {row['val_J']:.3f} F {row['val_F']:.3f}" if row["val_J"] == row["val_J"] else ""
            console.info(f"step {step}/{steps}: loss {row['loss']:.4f}, train IoU {row['train_iou']:.3f}{val}")

    row = finetune(model, stacks, labels, args.out, settings, base=str(args.model), resume=args.resume,
                   progress=progress)
    console.info(f"wrote {args.out} (step {row['step']}; log {args.out.with_name(args.out.stem + '.log.csv').name})")
    return 0
