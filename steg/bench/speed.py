"""The ``speed`` part: training throughput of each architecture, fp32 eager vs the device's fast path.

Each measurement trains on a real Lightning ``Trainer`` fitting
:class:`steg.training.module.StegModule` (what ``train.py`` runs, per-step metrics and
the architecture's preset, e.g. hinet's gradient clipping, included) in its own
process, so that peak memory (RSS on a CPU, ``max_memory_allocated`` on a GPU)
is that measurement's own. Both modes start from the same weights and see the
same batches for the same number of steps; the validation PSNR after those
steps (8-bit stego, held-out tiles) shows whether the fast path costs quality.
"""

from __future__ import annotations

import time
from typing import Any

from steg.bench.common import compose, fail, model_overrides, peak_memory_mb, run_worker, sync

__all__ = ["fast_path", "parse_mode", "held_out_psnr", "worker_speed", "part_speed"]


def fast_path(device: str) -> dict[str, Any]:
    """The project's fast training path for a device type, as measured in ``experiments/bench``.

    GPU: bf16 autocast, channels_last, ``torch.compile`` and fused Adam. CPU: channels_last
    only -- on CPUs without bf16 instructions (AVX2 only, as on the development
    machine) bf16 autocast ran 10-20x slower than fp32, and ``torch.compile``
    made the training step slower after a 2-minute warm-up.
    """
    if device == "cuda":
        return {"channels_last": True, "bf16": True, "compile": True, "fused": True}
    return {"channels_last": True, "bf16": False, "compile": False, "fused": False}


def parse_mode(text: str, device: str) -> dict[str, Any]:
    """``eager``, ``fast`` or a ``+`` list of channels_last, bf16, compile, fused -> the mode's switches."""
    if text == "eager":
        return {"channels_last": False, "bf16": False, "compile": False, "fused": False}
    if text == "fast":
        return fast_path(device)
    mode = {"channels_last": False, "bf16": False, "compile": False, "fused": False}
    for part in text.split("+"):
        if part not in mode:
            raise fail(f"mode {text!r}: expected eager, fast or a '+' list of {sorted(mode)}")
        mode[part] = True
    return mode


def gpu_utilisation_now(index: int = 0) -> float | None:
    """The GPU's utilisation (%) now: NVML through ``torch.cuda.utilization`` (pynvml), else ``nvidia-smi``, else None."""
    import subprocess

    import torch

    try:
        return float(torch.cuda.utilization(index))
    except Exception:  # no pynvml (or no NVML): ask nvidia-smi
        pass
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits",
                              "-i", str(index)], capture_output=True, text=True, timeout=5)
        return float(out.stdout.strip().splitlines()[0]) if out.returncode == 0 else None
    except (OSError, ValueError, IndexError, subprocess.SubprocessError):
        return None


class _GpuUtilisation:
    """Mean GPU utilisation (%) sampled in a thread (:func:`gpu_utilisation_now`); None off CUDA or unreadable."""

    def __init__(self, device: str):
        import threading

        self.samples: list[float] = []
        self.enabled = device == "cuda"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            value = gpu_utilisation_now()
            if value is None:
                self.enabled = False
                return
            self.samples.append(value)

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


class _StepTimer:
    """Lightning callback: times training steps after ``warmup`` of them; stops after ``seconds`` if given."""

    def __init__(self, device: str, warmup: int, seconds: float | None):
        import lightning as L

        outer = self

        class Timer(L.Callback):
            def on_train_batch_end(self, trainer, *args) -> None:
                outer.done += 1
                if outer.done == outer.warmup:
                    sync(device)
                    outer.warmup_s = time.perf_counter() - outer.start
                    outer.t0 = time.perf_counter()
                elif outer.done > outer.warmup and seconds is not None:
                    sync(device)
                    if outer.done - outer.warmup >= 3 and time.perf_counter() - outer.t0 >= seconds:
                        trainer.should_stop = True

            def on_train_start(self, trainer, *args) -> None:
                outer.start = time.perf_counter()

            def on_train_end(self, trainer, *args) -> None:
                sync(device)
                outer.t1 = time.perf_counter()

        self.callback = Timer()
        self.warmup, self.done = warmup, 0
        self.start = self.t0 = self.t1 = self.warmup_s = 0.0

    @property
    def timed(self) -> int:
        return max(0, self.done - self.warmup)


def held_out_psnr(net, cover, secret) -> tuple[float, float]:
    """(stego PSNR, revealed PSNR) in dB of held-out (B, C, H, W) pairs (any device), 8-bit stego and reveal.

    The images go to the net's device and dtype (wherever training left it); a
    keyed net is measured with its validation keys, as validation does.
    """
    import torch

    from steg.device import placement
    from steg.metrics import psnr
    from steg.quantize import quantize

    device, dtype = placement(net)
    net.eval()
    with torch.no_grad():
        cover, secret = cover.to(device, dtype), secret.to(device, dtype)
        keys = net.validation_keys(len(cover), 0)
        stego = quantize(net.hide_with_key(cover, secret, keys))
        revealed = quantize(net.reveal_with_key(stego.to(dtype), keys))

    return psnr(stego, cover), psnr(revealed, secret)


def worker_speed(model: str, mode_text: str, device: str, steps: int | None, seconds: float,
                 batch: int, size: int, seed: int, tiny: bool = False) -> dict[str, Any]:
    """Train ``model`` with a real Lightning ``Trainer`` (what ``train.py`` runs) for ``steps`` steps
    (or ``seconds``); return its speed and the quality after those steps."""
    import lightning as L
    import torch
    from hydra.utils import instantiate

    mode = parse_mode(mode_text, device)
    cfg = compose(model, overrides=[*model_overrides(model, tiny), f"data.batch_size={batch}",
                                    f"data.image_size={size}", "data.num_workers=0", f"data.val_tiles={2 * batch}"])
    data = instantiate(cfg.data)
    base_mb = peak_memory_mb(device)
    torch.manual_seed(seed)
    net = instantiate(cfg.model)
    module = instantiate(cfg.module, net=net, loss=instantiate(cfg.loss), optimizer=instantiate(cfg.optimizer),
                         scheduler=None, channels_last=mode["channels_last"], compile=mode["compile"],
                         # fused Adam where the mode asks and gradients are not clipped (Lightning refuses both)
                         fused_optimizer=mode["fused"] and not cfg.trainer.get("gradient_clip_val"))
    warmup = 2 if mode["compile"] else 1
    timer = _StepTimer(device, warmup, None if steps is not None else seconds)
    trainer = L.Trainer(accelerator=device, devices=1, max_steps=steps if steps is not None else -1, max_epochs=-1,
                        precision="bf16-mixed" if mode["bf16"] else "32-true", logger=False,
                        gradient_clip_val=cfg.trainer.get("gradient_clip_val"),
                        gradient_clip_algorithm=cfg.trainer.get("gradient_clip_algorithm"),
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        limit_val_batches=0, num_sanity_val_steps=0, callbacks=[timer.callback])
    L.seed_everything(seed, verbose=False)
    with _GpuUtilisation(device) as utilisation:
        trainer.fit(module, datamodule=data)
    elapsed = max(timer.t1 - timer.t0, 1e-9)

    data.setup("validate")
    val_cover, val_secret = next(iter(data.val_dataloader()))
    net.to(device)  # Lightning's teardown moved the module back to the CPU
    psnr_stego, psnr_secret = held_out_psnr(net, val_cover, val_secret)

    result = {
        "model": model, "mode": mode_text, **mode, "device": device, "batch": batch, "size": size,
        "steps": timer.done, "timed_steps": timer.timed, "warmup_s": timer.warmup_s,
        "images_per_s": timer.timed * batch / elapsed, "peak_mb": peak_memory_mb(device),
        "psnr_stego": psnr_stego, "psnr_secret": psnr_secret,
        "parameters": sum(p.numel() for p in net.parameters()),
        "gradient_clip_val": trainer.gradient_clip_val,  # what the Trainer clipped at (the preset's)
        "gpu_utilisation": utilisation.mean, "timed_with": "lightning.Trainer (steg.training.module.StegModule)",
    }
    if device == "cpu":
        result["baseline_mb"] = base_mb  # RSS before the net existed: Python, torch, the data
    return result


def part_speed(opts, targets, progress) -> dict[str, Any]:
    """Eager, then the fast mode for the same number of steps, per architecture: 2 progress units each."""
    rows = []
    for target in targets:
        model = target.arch
        pair: dict[str, Any] = {}
        for mode in ("eager", opts.fast):
            progress.set_postfix_str(f"{model} {mode}")
            args = ["speed", "--model", model, "--mode", mode, "--device", opts.device,
                    "--batch", str(opts.batch), "--size", str(opts.size), "--seed", str(opts.seed)]
            args += ["--tiny"] if opts.tiny else []
            if mode == "eager":
                args += ["--seconds", str(opts.seconds)]
            else:  # the same number of steps as eager, for the quality comparison
                args += ["--steps", str(pair["eager"]["steps"])]
            pair["eager" if mode == "eager" else "fast"] = run_worker(args)
            progress.update(1)
        eager, fast = pair["eager"], pair["fast"]
        rows.append({"model": model, "eager": eager, "fast": fast,
                     "speedup": fast["images_per_s"] / eager["images_per_s"],
                     "delta_psnr_stego": fast["psnr_stego"] - eager["psnr_stego"],
                     "delta_psnr_secret": fast["psnr_secret"] - eager["psnr_secret"]})
    return {"batch": opts.batch, "size": opts.size, "fast": opts.fast,
            "fast_path": parse_mode(opts.fast, opts.device), "rows": rows}
