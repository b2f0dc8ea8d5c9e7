"""The ``inference`` and ``cli`` parts: how long hiding and revealing take.

- ``inference``: ``steg hide`` + ``steg reveal`` of one image of each size
  through :class:`steg.inference.model.StegModel` (the CLI's path: padding, tiling),
  per architecture (fp32, untrained weights: speed does not depend on them), in
  ms and peak memory, each size in its own process.
- ``cli``: wall time of ``steg hide`` and ``steg reveal`` of a 256x256 pair with
  the shipped model, each a fresh process as a user runs it (best of 3 or more),
  and the peak memory (whole process, max RSS) of ``steg hide`` against the cover's
  size (the inference sizes), PNG decoding and writing included.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from steg.bench.common import ROOT, BenchError, build_model, peak_memory_mb, run_worker, sync

__all__ = ["worker_inference", "cli_wall_times", "cli_peak_memory", "part_inference", "part_cli"]


def worker_inference(model: str, device: str, size: int, seed: int, repeats: int, tiny: bool = False) -> dict[str, Any]:
    """Time ``steg hide`` + ``steg reveal`` of one size x size image through StegModel."""
    import torch

    from steg.inference.model import StegModel
    from steg.quantize import quantize

    torch.manual_seed(seed)
    base_mb = peak_memory_mb(device)
    model_ = StegModel(build_model(model, tiny=tiny), device=device)
    cover, secret = torch.rand(2, 1, 3, size, size).unbind(0)
    times: dict[str, list[float]] = {"hide_ms": [], "reveal_ms": []}
    for _ in range(repeats + 1):  # the first call warms up
        t0 = time.perf_counter()
        stego = quantize(model_.hide_tensor(cover, secret))
        sync(device)
        t1 = time.perf_counter()
        model_.reveal_tensor(stego)
        sync(device)
        t2 = time.perf_counter()
        times["hide_ms"].append(1000 * (t1 - t0))
        times["reveal_ms"].append(1000 * (t2 - t1))
    result: dict[str, Any] = {"model": model, "device": device, "size": size, "tile": model_.tile,
                              "peak_mb": peak_memory_mb(device)}
    for key, values in times.items():
        result[key] = min(values[1:]) if repeats else values[0]
    result["total_ms"] = result["hide_ms"] + result["reveal_ms"]
    if device == "cpu":
        result["baseline_mb"] = base_mb
    return result


def cli_wall_times(repeats: int, size: int = 256, model: str = "default") -> dict[str, Any]:
    """Wall time of ``steg hide`` and ``steg reveal`` of one size x size pair, as a user runs them.

    Each command is a fresh ``python -m steg`` process (interpreter start, imports,
    model load, the work, the PNG write); the best of ``repeats`` runs is kept,
    since other work on the machine only ever adds time.
    """
    import tempfile

    from steg.data import sample_photo_paths
    from steg.io import load_image, save_image, square_image

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        photos = sample_photo_paths("val")[:2]
        cover, secret, stego, revealed = (tmp_path / n for n in ("cover.png", "secret.png", "stego.png", "out.png"))
        for source, target in zip(photos, (cover, secret)):
            save_image(square_image(load_image(source, 3), size), target)
        commands = {"hide": ["hide", str(cover), str(secret), "-o", str(stego), "--model", model, "--force"],
                    "reveal": ["reveal", str(stego), "-o", str(revealed), "--model", model, "--force"]}
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(max(1, repeats)):
            for name, argv in commands.items():
                t0 = time.perf_counter()
                proc = subprocess.run([sys.executable, "-m", "steg", *argv], capture_output=True, text=True, cwd=ROOT)
                times[name].append(time.perf_counter() - t0)
                if proc.returncode != 0:
                    tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
                    raise BenchError(f"steg {name} failed: {tail[0]}")
    return {"size": size, "model": model, "runs": max(1, repeats),
            **{f"{name}_s": min(values) for name, values in times.items()},
            **{f"{name}_all_s": values for name, values in times.items()}}


_PEAK_WORKER = (
    "import resource, sys\n"
    "from steg.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "print('peak_kb', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, flush=True)\n"
    "sys.exit(code)\n"
)


def cli_peak_memory(sizes: list[int], model: str = "default") -> list[dict[str, Any]]:
    """Peak memory (max RSS, MB) of ``steg hide`` with a size x size PNG cover and a 256x256 secret, per size.

    Each size in a fresh process, as a user runs it: PNG decoding, fitting,
    padding, tiling and the PNG write included (Linux: ``ru_maxrss`` is in KB).
    """
    import tempfile

    import numpy as np
    from PIL import Image

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        secret = tmp_path / "secret.png"
        Image.fromarray(np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)).save(secret)
        for size in sizes:
            cover, stego = tmp_path / f"cover{size}.png", tmp_path / f"stego{size}.png"
            Image.fromarray(np.random.default_rng(size).integers(0, 256, (size, size, 3), dtype=np.uint8)).save(
                cover, compress_level=1)
            proc = subprocess.run([sys.executable, "-c", _PEAK_WORKER, "hide", str(cover), str(secret), "-o",
                                   str(stego), "--model", model, "--force"], capture_output=True, text=True, cwd=ROOT)
            peak = [line.split()[1] for line in proc.stdout.splitlines() if line.startswith("peak_kb ")]
            if proc.returncode != 0 or not peak:
                tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
                raise BenchError(f"steg hide of a {size}x{size} cover failed: {tail[0]}")
            rows.append({"size": size, "megapixels": size * size / 1e6, "hide_peak_mb": int(peak[0]) / 1024})
    return rows


def part_inference(opts, targets, progress) -> dict[str, Any]:
    """One worker per architecture and size: one progress unit each."""
    rows = []
    for target in targets:
        for size in opts.inference_sizes:
            progress.set_postfix_str(f"{target.arch} {size}x{size}")
            rows.append(run_worker(["inference", "--model", target.arch, "--device", opts.device,
                                    "--size", str(size), "--seed", str(opts.seed), "--repeats", str(opts.repeats),
                                    *(["--tiny"] if opts.tiny else [])]))
            progress.update(1)
    return {"sizes": opts.inference_sizes, "tiny": opts.tiny, "rows": rows}


def part_cli(opts, targets, progress) -> dict[str, Any]:
    result = cli_wall_times(max(3, opts.repeats))
    result["peak_memory"] = cli_peak_memory(opts.inference_sizes)
    progress.update(1)
    return result
