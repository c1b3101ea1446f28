"""Open time, memory and frame access times of the lazy video reader (read_video).

    python benchmarks/bench_video_access.py [--frames 600] [--size 640x360] [--gop 250] [--full]

Writes a GOP-``--gop`` H.264 clip (libx264, preset ultrafast; a moving gradient with
camera-like noise) into a temporary folder (``--full``: 1920x1080 x 3000 frames), then,
in a fresh process so that writing the clip does not count, measures: the time and RSS
growth of opening it (the demux-only index, the pts-order and grey checks); the time to
fetch frame k right after frame j for forward sequential access (k = j + 1) and for
random access; the RSS while reading frames sequentially (it must stay flat: only a few
frames are cached). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np


def rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def write_clip(path: str, n: int, width: int, height: int, gop: int) -> None:
    import av

    out = av.open(path, "w")
    stream = out.add_stream("libx264", rate=30, options={"preset": "ultrafast", "g": str(gop)})
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    yy, xx = np.mgrid[:height, :width]
    base = np.stack([(xx * 200 // width), (yy * 200 // height), ((xx + yy) % 200)], -1).astype(np.uint8)
    rng = np.random.default_rng(0)  # camera-like noise, so the clip has a realistic bit rate
    noise = rng.integers(0, 16, (8, height, width, 1), dtype=np.uint8)
    for t in range(n):
        img = np.roll(base, 4 * t, axis=1) + noise[t % len(noise)]
        img[8:40, 8 : 8 + t % (width - 16)] = 255
        out.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
    out.mux(stream.encode())
    out.close()


def timings(seconds: list[float]) -> dict:
    ms = np.asarray(seconds) * 1e3
    return {"median_ms": round(float(np.median(ms)), 2), "worst_ms": round(float(ms.max()), 2), "n": len(ms)}


def child(path: str, n_random: int) -> dict:
    import av  # noqa: F401 - imported before the baseline, as the reader needs it anyway

    from napari_sam2.io.video import VideoFrames, read_video

    seeks = [0]
    real_seek = VideoFrames._seek

    def counted(self, key_pos):
        seeks[0] += 1
        return real_seek(self, key_pos)

    VideoFrames._seek = counted
    rss0 = rss_mib()
    t0 = time.perf_counter()
    stack = read_video(path)
    open_s = time.perf_counter() - t0
    rss_open = rss_mib() - rss0
    data = stack.data
    n = len(data)
    seeks_open, seeks[0] = seeks[0], 0
    forward, rss_trace = [], []
    data[0]
    for k in range(1, n):
        t0 = time.perf_counter()
        data[k]
        forward.append(time.perf_counter() - t0)
        if k % max(n // 10, 1) == 0:
            rss_trace.append(round(rss_mib() - rss0, 1))
    seeks_forward, seeks[0] = seeks[0], 0
    rng = np.random.default_rng(0)
    rand = []
    for k in rng.integers(0, n, n_random):
        t0 = time.perf_counter()
        data[int(k)]
        rand.append(time.perf_counter() - t0)
    stack.close()
    return {
        "frames": n,
        "shape": list(stack.shape),
        "open_s": round(open_s, 3),
        "open_rss_growth_mib": round(rss_open, 1),
        "seeks_at_open": seeks_open,
        "forward_sequential": timings(forward) | {"seeks": seeks_forward},
        "random": timings(rand) | {"seeks": seeks[0]},
        "rss_growth_while_reading_mib": rss_trace,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=600)
    ap.add_argument("--size", default="640x360", help="WIDTHxHEIGHT")
    ap.add_argument("--gop", type=int, default=250)
    ap.add_argument("--random", type=int, default=40, help="random fetches to time")
    ap.add_argument("--full", action="store_true", help="1920x1080 x 3000 frames")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.random)))
        return
    if args.full:
        args.frames, args.size = 3000, "1920x1080"
    width, height = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "clip.mp4")
        t0 = time.perf_counter()
        write_clip(path, args.frames, width, height, args.gop)
        write_s = time.perf_counter() - t0
        cmd = [sys.executable, __file__, "--child", path, "--random", str(args.random)]
        result = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
        result = {"size": args.size, "gop": args.gop, "file_mib": round(os.path.getsize(path) / 2**20, 1),
                  "write_s": round(write_s, 1)} | result
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
