"""Benchmarks: training throughput, inference time and memory, quality at a time budget.

``make bench`` runs ``python -m steg.bench``; every part writes into ``--out``
(default ``experiments/bench``): ``bench.json`` (all figures) and ``bench.md``
(the tables). Parts:

- ``speed``: training steps per second of each model at 64x64, batch 16, timed
  on a real Lightning ``Trainer`` fitting :class:`steg.module.StegModule` (what
  ``train.py`` runs, per-step metrics included), in plain fp32 eager mode and in
  the project's fast path for the device (:func:`fast_path`), side by side. Both start from the same weights and see
  the same batches for the same number of steps, so the validation PSNR after
  those steps (8-bit stego, held-out tiles) shows whether the fast path costs
  quality. Every measurement runs in its own process, so that peak memory
  (RSS on a CPU, ``max_memory_allocated`` on a GPU) is that measurement's own.
- ``inference``: ``steg hide`` + ``steg reveal`` of one image of each size
  through :class:`steg.inference.StegModel` (the CLI's path), in ms and peak memory.
- ``cli``: wall time of ``steg hide`` and ``steg reveal`` of a 256x256 pair with
  the shipped model, each a fresh process as a user runs it (best of 3 or more).
- ``quality``: each model trained for the same wall-clock budget with
  ``train.py`` on the sample data, then :func:`steg.evaluate.evaluate` (what
  ``steg eval`` prints; 8-bit stego) of its best checkpoint on photographs it never saw.

Figures are measured, never asserted: no test times anything. (Over 400 lines:
the parts, their worker processes and the report share one command line and one
JSON layout; split, each piece would need the others to be read.)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Sequence

__all__ = ["fast_path", "main", "models", "cli_wall_times"]

PARTS = ("speed", "inference", "cli", "quality")
ROOT = Path(__file__).resolve().parent.parent


def models() -> tuple[str, ...]:
    """The registered architectures (``steg.nets.ARCHITECTURES``), whose names are their configs."""
    from steg.nets import ARCHITECTURES

    return tuple(ARCHITECTURES)


def fast_path(device: str) -> dict[str, Any]:
    """The project's fast training path for a device type, as measured in ``experiments/bench``.

    GPU: bf16 autocast, channels_last and ``torch.compile``. CPU: channels_last
    only -- on CPUs without bf16 instructions (AVX2 only, as on the development
    machine) bf16 autocast ran 10-20x slower than fp32, and ``torch.compile``
    made the training step slower after a 2-minute warm-up.
    """
    if device == "cuda":
        return {"channels_last": True, "bf16": True, "compile": True}
    return {"channels_last": True, "bf16": False, "compile": False}


def _parse_mode(text: str, device: str) -> dict[str, Any]:
    if text == "eager":
        return {"channels_last": False, "bf16": False, "compile": False}
    if text == "fast":
        return fast_path(device)
    mode = {"channels_last": False, "bf16": False, "compile": False}
    for part in text.split("+"):
        if part not in mode:
            raise SystemExit(f"steg.bench: error: mode {text!r}: expected eager, fast or a '+' list of {sorted(mode)}")
        mode[part] = True
    return mode


# -- model construction (from the Hydra configs, so the bench measures what train.py builds) --
def compose(name: str, channels: int = 3, overrides: Sequence[str] = ()):
    from hydra import compose as hydra_compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return hydra_compose("train", overrides=[f"model={name}", f"channels={channels}", *overrides])


def build_model(name: str, channels: int = 3):
    from hydra.utils import instantiate

    return instantiate(compose(name, channels).model)


def _peak_memory_mb(device: str) -> float:
    import torch

    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


class _GpuUtilisation:
    """Mean GPU utilisation (%) sampled every 0.1 s in a thread; None where NVML is missing."""

    def __init__(self, device: str):
        import threading

        self.samples: list[float] = []
        self.enabled = device == "cuda"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        import torch

        while not self._stop.wait(0.1):
            try:
                self.samples.append(float(torch.cuda.utilization()))
            except Exception:  # no pynvml / NVML: report None
                self.enabled = False
                return

    def __enter__(self):
        if self.enabled:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    @property
    def mean(self) -> float | None:
        return sum(self.samples) / len(self.samples) if self.enabled and self.samples else None


def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


# -- workers: one measurement per process ------------------------------------------------
class _StepTimer:
    """Lightning callback: times training steps after ``warmup`` of them; stops after ``seconds`` if given."""

    def __init__(self, device: str, warmup: int, seconds: float | None):
        import lightning as L

        outer = self

        class Timer(L.Callback):
            def on_train_batch_end(self, trainer, *args) -> None:
                outer.done += 1
                if outer.done == outer.warmup:
                    _sync(device)
                    outer.warmup_s = time.perf_counter() - outer.start
                    outer.t0 = time.perf_counter()
                elif outer.done > outer.warmup and seconds is not None:
                    _sync(device)
                    if outer.done - outer.warmup >= 3 and time.perf_counter() - outer.t0 >= seconds:
                        trainer.should_stop = True

            def on_train_start(self, trainer, *args) -> None:
                outer.start = time.perf_counter()

            def on_train_end(self, trainer, *args) -> None:
                _sync(device)
                outer.t1 = time.perf_counter()

        self.callback = Timer()
        self.warmup, self.done = warmup, 0
        self.start = self.t0 = self.t1 = self.warmup_s = 0.0

    @property
    def timed(self) -> int:
        return max(0, self.done - self.warmup)


def worker_speed(model: str, mode_text: str, device: str, steps: int | None, seconds: float,
                 batch: int, size: int, seed: int) -> dict[str, Any]:
    """Train ``model`` with a real Lightning ``Trainer`` (what ``train.py`` runs) for ``steps`` steps
    (or ``seconds``); return its speed and the quality after those steps."""
    import lightning as L
    import torch
    from hydra.utils import instantiate
    from torchmetrics.functional.image import peak_signal_noise_ratio

    from steg.quantize import quantize

    mode = _parse_mode(mode_text, device)
    cfg = compose(model, overrides=[f"data.batch_size={batch}", f"data.image_size={size}", "data.num_workers=0",
                                    f"data.val_tiles={2 * batch}"])
    data = instantiate(cfg.data)
    base_mb = _peak_memory_mb(device)
    torch.manual_seed(seed)
    net = instantiate(cfg.model)
    module = instantiate(cfg.module, net=net, loss=instantiate(cfg.loss), optimizer=instantiate(cfg.optimizer),
                         scheduler=None, channels_last=mode["channels_last"], compile=mode["compile"])
    warmup = 2 if mode["compile"] else 1
    timer = _StepTimer(device, warmup, None if steps is not None else seconds)
    trainer = L.Trainer(accelerator=device, devices=1, max_steps=steps if steps is not None else -1, max_epochs=-1,
                        precision="bf16-mixed" if mode["bf16"] else "32-true", logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        limit_val_batches=0, num_sanity_val_steps=0, callbacks=[timer.callback])
    L.seed_everything(seed, verbose=False)
    with _GpuUtilisation(device) as utilisation:
        trainer.fit(module, datamodule=data)
    elapsed = max(timer.t1 - timer.t0, 1e-9)

    data.setup("validate")
    val_cover, val_secret = next(iter(data.val_dataloader()))
    net.eval()
    with torch.no_grad():
        cover, secret = val_cover.to(device), val_secret.to(device)
        stego = quantize(net.hide(cover, secret))
        revealed = quantize(net.reveal(stego))

    def psnr(a, b) -> float:
        return float(peak_signal_noise_ratio(a, b, data_range=1.0, reduction="elementwise_mean", dim=(1, 2, 3)))

    result = {
        "model": model, "mode": mode_text, **mode, "device": device, "batch": batch, "size": size,
        "steps": timer.done, "timed_steps": timer.timed, "warmup_s": timer.warmup_s,
        "images_per_s": timer.timed * batch / elapsed, "peak_mb": _peak_memory_mb(device),
        "psnr_stego": psnr(stego, cover), "psnr_secret": psnr(revealed, secret),
        "parameters": sum(p.numel() for p in net.parameters()),
        "gpu_utilisation": utilisation.mean, "timed_with": "lightning.Trainer (steg.module.StegModule)",
    }
    if device == "cpu":
        result["baseline_mb"] = base_mb  # RSS before the net existed: Python, torch, the data
    return result


def worker_inference(model: str, device: str, size: int, seed: int, repeats: int) -> dict[str, Any]:
    """Time ``steg hide`` + ``steg reveal`` of one size x size image through StegModel."""
    import torch

    from steg.inference import StegModel
    from steg.quantize import quantize

    torch.manual_seed(seed)
    base_mb = _peak_memory_mb(device)
    model_ = StegModel(build_model(model), device=device)
    cover, secret = torch.rand(2, 1, 3, size, size).unbind(0)
    times = {"hide_ms": [], "reveal_ms": []}
    for _ in range(repeats + 1):  # the first call warms up
        t0 = time.perf_counter()
        stego = quantize(model_.hide_tensor(cover, secret))
        _sync(device)
        t1 = time.perf_counter()
        model_.reveal_tensor(stego)
        _sync(device)
        t2 = time.perf_counter()
        times["hide_ms"].append(1000 * (t1 - t0))
        times["reveal_ms"].append(1000 * (t2 - t1))
    result = {"model": model, "device": device, "size": size, "tile": model_.tile,
              "peak_mb": _peak_memory_mb(device)}
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
                    raise RuntimeError(f"steg {name} failed: {tail[0]}")
    return {"size": size, "model": model, "runs": max(1, repeats),
            **{f"{name}_s": min(values) for name, values in times.items()},
            **{f"{name}_all_s": values for name, values in times.items()}}


def _run_worker(args: list[str]) -> dict[str, Any]:
    """Run one measurement in a fresh process; its last stdout line is the JSON result."""
    cmd = [sys.executable, "-m", "steg.bench", "--worker", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"benchmark worker {' '.join(args)} failed: {tail[0]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- parts --------------------------------------------------------------------------------
def part_speed(opts, report: dict[str, Any], progress) -> None:
    rows = []
    for model in opts.models:
        pair = {}
        for mode in ("eager", opts.fast):
            args = ["speed", "--model", model, "--mode", mode, "--device", opts.device,
                    "--batch", str(opts.batch), "--size", str(opts.size), "--seed", str(opts.seed)]
            if mode == "eager":
                args += ["--seconds", str(opts.seconds)]
            else:  # the same number of steps as eager, for the quality comparison
                args += ["--steps", str(pair["eager"]["steps"])]
            pair["eager" if mode == "eager" else "fast"] = _run_worker(args)
            progress.update(1)
        eager, fast = pair["eager"], pair["fast"]
        rows.append({"model": model, "eager": eager, "fast": fast,
                     "speedup": fast["images_per_s"] / eager["images_per_s"],
                     "delta_psnr_stego": fast["psnr_stego"] - eager["psnr_stego"],
                     "delta_psnr_secret": fast["psnr_secret"] - eager["psnr_secret"]})
    report["speed"] = {"batch": opts.batch, "size": opts.size, "fast": opts.fast,
                       "fast_path": _parse_mode(opts.fast, opts.device), "rows": rows}


def part_inference(opts, report: dict[str, Any], progress) -> None:
    rows = []
    for model in opts.models:
        for size in opts.inference_sizes:
            rows.append(_run_worker(["inference", "--model", model, "--device", opts.device,
                                     "--size", str(size), "--seed", str(opts.seed),
                                     "--repeats", str(opts.repeats)]))
            progress.update(1)
    report["inference"] = {"sizes": opts.inference_sizes, "rows": rows}


def part_cli(opts, report: dict[str, Any], progress) -> None:
    report["cli"] = cli_wall_times(max(3, opts.repeats))
    progress.update(1)


def part_quality(opts, report: dict[str, Any], progress) -> None:
    from steg.cli import main as steg_main
    from steg.evaluate import evaluate, folder_pairs
    from steg.inference import load_model
    from steg.io import write_text
    from steg.metrics import SUMMARY_METRICS

    runs_dir = Path(opts.runs_dir)
    images = Path(opts.images) if opts.images else runs_dir / "heldout"
    if not opts.images:
        steg_main(["samples", str(images), "--force"])
    budget = _hms(opts.budget_min)
    rows = []
    for model in opts.models:
        run_dir = runs_dir / f"{model}_{opts.budget_min:g}min"
        cmd = [sys.executable, str(ROOT / "train.py"), f"model={model}", f"beta={opts.beta}",
               "scheduler=none", "trainer.max_epochs=100000", f"trainer.max_time={budget}",
               "trainer.enable_progress_bar=false", "logger=csv", f"seed={opts.seed}",
               f"hydra.run.dir={run_dir}", *opts.train_args.split()]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT,
                              env={**os.environ, "WANDB_MODE": "offline"})
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
            raise RuntimeError(f"training {model} failed (see {run_dir}): {tail[0]}")
        summary = json.loads((run_dir / "metrics.json").read_text())
        ckpt = Path(summary["paths"].get("best_checkpoint") or summary["paths"]["last_checkpoint"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ev = evaluate(load_model(ckpt), folder_pairs(images), size=opts.eval_size)
        write_text(run_dir / "eval.json", json.dumps({"n": ev.n, **ev.summary, "images": ev.rows}, indent=2) + "\n")
        rows.append({"model": model, "train_wall_s": wall, "epochs": summary.get("epochs"),
                     "steps": summary.get("steps"), "best_epoch": summary.get("best", {}).get("epoch"),
                     **{k: ev.summary[k] for k in SUMMARY_METRICS}, "pairs": ev.n, "run_dir": str(run_dir)})
        progress.update(1)
    report["quality"] = {"budget_min": opts.budget_min, "images": str(images), "eval_size": opts.eval_size,
                         "beta": opts.beta, "rows": rows}


def _hms(minutes: float) -> str:
    total = int(round(minutes * 60))
    return f"00:{total // 3600:02d}:{total % 3600 // 60:02d}:{total % 60:02d}"


# -- report -------------------------------------------------------------------------------
def markdown(report: dict[str, Any]) -> str:
    env = report["environment"]
    lines = [f"Device: {env['device_name']} ({env['threads']} threads); torch {env['torch']}; "
             f"command: `{env['command']}`", ""]
    if "speed" in report:
        s = report["speed"]
        on = ", ".join(k for k, v in s["fast_path"].items() if v) or "nothing"
        lines += [f"### Training throughput, {s['size']}x{s['size']}, batch {s['batch']} "
                  f"(fast path: {on})", "",
                  "| model | params | fp32 eager img/s | fast img/s | speed-up | peak MB eager / fast "
                  "| steps | PSNR stego / secret after them, eager | fast - eager (dB) |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in s["rows"]:
            e, f = r["eager"], r["fast"]
            lines.append(
                f"| `{r['model']}` | {e['parameters'] / 1e6:.2f} M | {e['images_per_s']:.2f} | {f['images_per_s']:.2f} "
                f"| **{r['speedup']:.2f}x** | {e['peak_mb']:.0f} / {f['peak_mb']:.0f} | {e['steps']} "
                f"| {e['psnr_stego']:.2f} / {e['psnr_secret']:.2f} "
                f"| {r['delta_psnr_stego']:+.2f} / {r['delta_psnr_secret']:+.2f} |")
        utilisation = [(r["model"], r["eager"].get("gpu_utilisation"), r["fast"].get("gpu_utilisation"))
                       for r in s["rows"]]
        if any(e is not None or f is not None for _, e, f in utilisation):
            lines.append("")
            lines.append("GPU utilisation while timing, eager / fast: " + "; ".join(
                f"`{m}` {_pct(e)} / {_pct(f)}" for m, e, f in utilisation))
        lines.append("")
    if "inference" in report:
        lines += ["### Inference: `steg hide` + `steg reveal` of one image (fp32, untrained weights)", "",
                  "| model | size | hide ms | reveal ms | total ms | peak MB |", "|---|---|---|---|---|---|"]
        for r in report["inference"]["rows"]:
            lines.append(f"| `{r['model']}` | {r['size']}x{r['size']} | {r['hide_ms']:.0f} | {r['reveal_ms']:.0f} "
                         f"| **{r['total_ms']:.0f}** | {r['peak_mb']:.0f} |")
        lines.append("")
    if "cli" in report:
        c = report["cli"]
        lines += [f"### `steg hide` / `steg reveal` as a user runs them ({c['size']}x{c['size']}, model "
                  f"`{c['model']}`, a fresh process each, best of {c['runs']})", "",
                  f"`steg hide`: **{c['hide_s']:.2f} s**; `steg reveal`: **{c['reveal_s']:.2f} s**", ""]
    if "quality" in report:
        q = report["quality"]
        lines += [f"### Quality at a budget of {q['budget_min']:g} min of training each "
                  f"(beta {q['beta']}, then `steg eval --size {q['eval_size']}` on {q['images']})", "",
                  "| model | epochs (steps) | best epoch | stego PSNR / SSIM | revealed PSNR / SSIM | mean abs. error stego / revealed (0-255) |",
                  "|---|---|---|---|---|---|"]
        for r in q["rows"]:
            lines.append(f"| `{r['model']}` | {r['epochs']} ({r['steps']}) | {r['best_epoch']} "
                         f"| **{r['psnr_stego']:.2f} dB** / {r['ssim_stego']:.3f} "
                         f"| **{r['psnr_secret']:.2f} dB** / {r['ssim_secret']:.3f} "
                         f"| {r['apd_stego']:.2f} / {r['apd_secret']:.2f} |")
        lines.append("")
    return "\n".join(lines)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}%"


def _environment(device: str, argv: Sequence[str]) -> dict[str, Any]:
    import torch

    if device == "cuda":
        name = torch.cuda.get_device_name()
    else:
        name = platform.processor() or platform.machine()
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
        name = f"CPU {name}, {os.cpu_count()} cores"
    return {"device": device, "device_name": name, "threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version(),
            "command": "python -m steg.bench " + " ".join(argv)}


def _write(out: Path, report: dict[str, Any]) -> None:
    from steg.io import write_text

    write_text(out / "bench.json", json.dumps(report, indent=2) + "\n")
    write_text(out / "bench.md", markdown(report) + "\n")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m steg.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="experiments/bench", help="folder for bench.json and bench.md")
    p.add_argument("--parts", default=",".join(PARTS), help=f"comma list of {', '.join(PARTS)}")
    p.add_argument("--models", default=None, help="comma list of model configs (default: every registered one)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--fast", default="fast", help="fast mode: 'fast' (the device's fast path) "
                   "or a '+' list of channels_last, bf16, compile")
    p.add_argument("--seconds", type=float, default=20.0, help="timed training per model in fp32 eager")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--inference-sizes", default="256,1024")
    p.add_argument("--repeats", type=int, default=1, help="timed inference calls after a warm-up (best kept)")
    p.add_argument("--budget-min", type=float, default=30.0, help="training minutes per model for quality")
    p.add_argument("--beta", type=float, default=0.75)
    p.add_argument("--images", default=None, help="held-out photos for quality (default: the embedded 4)")
    p.add_argument("--eval-size", type=int, default=256, help="steg eval --size for quality")
    p.add_argument("--runs-dir", default="runs/bench", help="where the quality runs go")
    p.add_argument("--train-args", default="", help="extra train.py overrides for the quality runs, one string")
    p.add_argument("--seed", type=int, default=42)
    # internal: one measurement in this process
    p.add_argument("--worker", choices=["speed", "inference"], help=argparse.SUPPRESS)
    p.add_argument("--model", help=argparse.SUPPRESS)
    p.add_argument("--mode", default="eager", help=argparse.SUPPRESS)
    p.add_argument("--steps", type=int, default=None, help=argparse.SUPPRESS)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    opts = build_parser().parse_args(argv)
    if opts.device == "auto":
        import torch

        opts.device = "cuda" if torch.cuda.is_available() else "cpu"
    if opts.worker == "speed":
        print(json.dumps(worker_speed(opts.model, opts.mode, opts.device, opts.steps, opts.seconds,
                                      opts.batch, opts.size, opts.seed)))
        return 0
    if opts.worker == "inference":
        print(json.dumps(worker_inference(opts.model, opts.device, opts.size, opts.seed, opts.repeats)))
        return 0

    from tqdm.auto import tqdm

    from steg.nets import ARCHITECTURES

    parts = [p for p in opts.parts.split(",") if p]
    opts.models = [m for m in (opts.models or ",".join(models())).split(",") if m]
    for part in parts:
        if part not in PARTS:
            raise SystemExit(f"steg.bench: error: --parts: unknown part {part!r}; expected some of {', '.join(PARTS)}")
    for model in opts.models:
        if not (ROOT / "conf" / "model" / f"{model}.yaml").is_file():
            raise SystemExit(f"steg.bench: error: --models: no config conf/model/{model}.yaml "
                             f"(architectures: {', '.join(sorted(ARCHITECTURES))})")
    opts.inference_sizes = [int(s) for s in opts.inference_sizes.split(",") if s]
    _parse_mode(opts.fast, opts.device)
    if opts.budget_min <= 0 or opts.seconds <= 0:
        raise SystemExit("steg.bench: error: --budget-min and --seconds must be > 0")

    out = Path(opts.out)
    report: dict[str, Any] = {"environment": _environment(opts.device, argv)}
    total = sum({"speed": 2 * len(opts.models), "inference": len(opts.models) * len(opts.inference_sizes), "cli": 1,
                 "quality": len(opts.models)}[p] for p in parts)
    funcs = {"speed": part_speed, "inference": part_inference, "cli": part_cli, "quality": part_quality}
    with tqdm(total=total, desc="bench", unit="run", file=sys.stderr) as progress:
        for part in parts:
            progress.set_postfix_str(part)
            try:
                funcs[part](opts, report, progress)
            except RuntimeError as exc:  # a worker or training run failed: one line, keep the rest
                raise SystemExit(f"steg.bench: error: {exc} (finished parts are in {out})") from None
            _write(out, report)  # after every part: an interrupted bench keeps what it measured
    print(markdown(report))
    print(f"wrote {out / 'bench.json'} and {out / 'bench.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
