"""Train the built-in demo model ``napari-sam2-demo`` from scratch on synthetic data (issue 15).

    python benchmarks/train_demo_model.py --out weights/napari-sam2-demo.pt --half [--device cuda]

The architecture is the miniature test configuration (``sam2.1_test_micro``: a 16-channel Hiera
trunk, SAM 2.1 heads and memory, 12.1 M parameters) at 256 px, initialised with PyTorch's default
initialisation (``torch.manual_seed(0)``). Training data is drawn here, deterministically, by
:mod:`napari_sam2.train.synthetic` with ``TRAIN_SCENES``: ``--sequences`` random cell clips (seeds
0..N-1: cells that move, touch, divide, enter and leave; varied sizes, brightness, blur and noise)
and as many ultrasound-like clips (seeds 0..N-1: speckle with one or two pulsating, drifting dark
cavities), 8 frames of 256 px each. Validation during training: a cells clip of seed 10**6.
The quality benchmark (``bench_demo_quality.py``) uses other seeds and ``HELD_OUT_SCENES``.

Two stages (docs/training.md says why): (1) ``--image-steps`` steps of clicks with three correction
rounds on single frames of the cell clips; (2) ``--steps`` steps on 3-frame clips of both kinds with
clicks, boxes and masks, one correction round and memory propagation, cosine decay. Both: AdamW at
lr 5e-4 after a warm-up, 12 objects per step as one batch, bf16 autocast, every weight trained. The
shipped file is the last checkpoint, stored in fp16 (``--half``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from napari_sam2.model.configs import TEST_CONFIG
from napari_sam2.model.sam2 import Sam2Model
from napari_sam2.train import TrainSettings, finetune
from napari_sam2.train.synthetic import TRAIN_SCENES, random_cells_clip, random_ultrasound_clip


def data(n: int, base: int, scenes=TRAIN_SCENES) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """``n`` random cell clips and ``n`` ultrasound-like clips, seeds base..base+n-1, 8 frames each."""
    stacks, labels = [], []
    for k in range(n):
        for make in (random_cells_clip, random_ultrasound_clip):
            v = make(base + k, n_frames=8, size=256, settings=scenes)
            stacks.append(v.image)
            labels.append(v.labels)
    return stacks, labels


def to_half(path: Path) -> None:
    """Store the weights of a finished checkpoint in fp16 (half the size; loading casts back)."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    ckpt["model"] = {k: v.half() if v.is_floating_point() else v for k, v in ckpt["model"].items()}
    torch.save(ckpt, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image-steps", type=int, default=800, help="stage 1: clicks on single frames of cells")
    ap.add_argument("--steps", type=int, default=2000, help="stage 2: clips of cells and ultrasound, memory")
    ap.add_argument("--out", type=Path, default=Path("weights/napari-sam2-demo.pt"))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--clip-len", type=int, default=3)
    ap.add_argument("--objects", type=int, default=12, help="objects per clip, trained as one batch")
    ap.add_argument("--image-corrections", type=int, default=3, help="correction rounds in stage 1")
    ap.add_argument("--no-bf16", action="store_true", help="fp32 on the CPU (bf16 autocast is the default)")
    ap.add_argument("--sequences", type=int, default=150, help="cell clips and ultrasound clips, each")
    ap.add_argument("--val-every", type=int, default=250)
    ap.add_argument("--half", action="store_true", help="store the final weights in fp16")
    ap.add_argument("--resume", action="store_true", help="resume stage 2 from OUT.train.pt")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = Sam2Model(TEST_CONFIG).to(args.device)
    stacks, labels = data(args.sequences, 0)
    val = random_cells_clip(10**6, n_frames=8, size=256)
    common = dict(objects=args.objects, lr=args.lr, train="all", bf16=not args.no_bf16, val_every=args.val_every,
                  val_clips=12, grad_clip=1.0)
    t0 = time.perf_counter()

    def progress(stage: str):
        def show(step: int, steps: int, row: dict) -> None:
            if step % 25 == 0 or row["val_J"] == row["val_J"]:
                print(f"{stage} {step}/{steps} loss {row['loss']:.3f} iou {row['train_iou']:.3f} "
                      f"val J {row['val_J']:.3f} F {row['val_F']:.3f} {time.perf_counter() - t0:.0f} s", flush=True)
        return show

    # the last pair of each stage's list is its validation clip (finetune's rule)
    stage1 = args.out.with_name(args.out.stem + ".stage1.pt")
    if not args.resume:
        # stage 1: clicks (and correction clicks) on single frames of the cell clips only. Mixed with the
        # ultrasound clips from the start, the model settles on masks that ignore the prompt (one or two
        # cavities per clip need no prompt) and never learns where a click points: val J 0.000 after
        # 750 steps, where clicks on cells alone reach 0.74 after 300.
        cells = stacks[0::2] + [val.image], labels[0::2] + [val.labels]
        finetune(model, *cells, stage1, TrainSettings(steps=args.image_steps, clip_len=1, warmup=50,
                                                      correction_rounds=args.image_corrections,
                                                      prompt_kinds=("click",), **common),
                 base="scratch: sam2.1_test_micro (napari-sam2-demo, stage 1: clicks on single frames of cells)",
                 progress=progress("image"))
    else:
        model.load_state_dict(torch.load(stage1, map_location="cpu", weights_only=True)["model"])
    # stage 2: every clip, clicks / boxes / masks, one correction round, memory propagation
    settings = TrainSettings(steps=args.steps, clip_len=args.clip_len, correction_rounds=1, warmup=100,
                             schedule="cosine", **common)
    finetune(model, stacks + [val.image], labels + [val.labels], args.out, settings,
             base=f"scratch: sam2.1_test_micro (napari-sam2-demo; stage 1: {args.image_steps} single-frame steps)",
             resume=args.resume, progress=progress("video"))
    if args.half:
        to_half(args.out)


if __name__ == "__main__":
    main()
