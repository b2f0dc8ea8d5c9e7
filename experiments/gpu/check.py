"""`make gpu-check`: does steg train, evaluate, analyse and run fast on this GPU? One call, at most 8 minutes.

    PYTHONPATH=. python experiments/gpu/check.py                 # on a GPU machine (no `pip install -e .` needed)
    PYTHONPATH=. python experiments/gpu/check.py --device cpu --tiny   # the same stages, seconds-small, on a CPU

Stages (each recorded, a failing one does not stop the others; a stage that
would run past ``--budget-s`` is skipped and said so):

1. ``imports``: the project's dependencies, checked first; what is missing is
   printed on one line (with the ``pip install`` that adds it) and the check stops.
2. ``env``: date, card, torch / CUDA / Lightning / torchmetrics versions.
3. ``smoke``: every registered architecture trained by ``steg.training.loop.train``
   (what ``python train.py`` runs) for ``--steps`` steps in bf16-mixed and in
   fp32 from the same seed, on the embedded photos; validation PSNR/SSIM
   (8-bit stego) side by side, and on CUDA the host syncs of one training step
   (``torch.cuda.set_sync_debug_mode``).
4. ``cli``: ``steg hide``/``reveal`` (keyed), ``steg eval`` and ``steg analyze``
   (tiny budget) with ``--device``, each a fresh process as a user runs it; the
   shipped model loaded on the device and exported to ONNX (if onnx is installed).
5. ``bench``: ``python -m steg.bench --parts speed`` (fp32 eager vs the fast path:
   images/s, peak memory, utilisation) of ``--bench-models`` (default unet and
   hinet, the nets of the issue's speed aims: the compile warm-up of every
   architecture does not fit in 8 minutes; ``make bench`` times them all).
6. ``hinet_div2k``: ``python train.py experiment=hinet_div2k data=sample`` for
   ``--hinet-s`` seconds (the paper preset on the embedded photos).

Writes ``check.json`` (everything) and ``check.md`` (a short summary with the
date, card and torch version) into ``--out`` (default: experiments/gpu).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[2]

#: (import name, pip name) of what the check needs: the project's dependencies (pyproject.toml) but torch,
#: which must already be a CUDA build on a GPU machine (never installed by this script).
REQUIRED = [
    ("torch", "torch"), ("lightning", "lightning"), ("torchmetrics", "torchmetrics"), ("hydra", "hydra-core"),
    ("omegaconf", "omegaconf"), ("antlr4", "antlr4-python3-runtime"), ("kornia", "kornia"),
    ("kornia_rs", "kornia_rs"), ("PIL", "pillow"), ("numpy", "numpy"), ("matplotlib", "matplotlib"),
    ("skimage", "scikit-image"), ("safetensors", "safetensors"), ("tqdm", "tqdm"),
]  # not wandb: every run of the check logs to CSV


def missing_imports() -> list[str]:
    """The pip names of the :data:`REQUIRED` modules that do not import."""
    missing = []
    for module, pip_name in REQUIRED:
        try:
            importlib.import_module(module)
        except Exception:  # ImportError, or a module that fails while importing
            missing.append(pip_name)
    return missing


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def environment(device: str) -> dict[str, Any]:
    """Date, machine, card and library versions."""
    import lightning
    import torch
    import torchmetrics

    env: dict[str, Any] = {
        "date": _now(), "host": platform.node(), "python": platform.python_version(),
        "torch": torch.__version__, "cuda": torch.version.cuda, "lightning": lightning.__version__,
        "torchmetrics": torchmetrics.__version__, "device": device, "cpu_count": os.cpu_count(),
    }
    try:
        import kornia

        env["kornia"] = kornia.__version__
    except Exception:
        env["kornia"] = None
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        env.update(card=torch.cuda.get_device_name(0), card_memory_gb=round(props.total_memory / 2**30, 1),
                   capability=f"{props.major}.{props.minor}", bf16_supported=torch.cuda.is_bf16_supported())
    else:
        env["card"] = None
    return env


class Budget:
    """Wall-clock budget of the whole check: ``left()`` seconds; stages ask before they start."""

    def __init__(self, seconds: float):
        self.start, self.seconds = time.monotonic(), seconds

    def left(self) -> float:
        return self.seconds - (time.monotonic() - self.start)


def stage(results: dict[str, Any], name: str, budget: Budget, need_s: float, fn: Callable[[], Any]) -> None:
    """Run ``fn`` as stage ``name`` unless fewer than ``need_s`` seconds are left; record ok/error/skipped."""
    if budget.left() < need_s:
        results[name] = {"status": "skipped", "reason": f"budget: {budget.left():.0f} s left, needs ~{need_s:.0f} s"}
        print(f"[{name}] skipped (budget)", flush=True)
        return
    t0 = time.monotonic()
    print(f"[{name}] ...", flush=True)
    try:
        out = fn()
        results[name] = {"status": "ok", "seconds": round(time.monotonic() - t0, 1), **(out or {})}
    except Exception as exc:
        results[name] = {"status": "error", "seconds": round(time.monotonic() - t0, 1),
                         "error": f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}",
                         "traceback": traceback.format_exc(limit=-6)}
        if getattr(exc, "rows", None) is not None:  # the figures of the runs that did finish
            results[name]["rows"] = exc.rows
    print(f"[{name}] {results[name]['status']} ({results[name].get('seconds', 0)} s)"
          + (f": {results[name]['error']}" if results[name]["status"] == "error" else ""), flush=True)


class SmokeFailed(RuntimeError):
    """Some runs of a stage failed; ``rows`` keeps the figures of those that did not, for the report."""

    def __init__(self, message: str, rows: list[dict[str, Any]]):
        super().__init__(message)
        self.rows = rows


# -- smoke training -----------------------------------------------------------------------------
def _compose(overrides: list[str]):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("train", overrides=overrides)


def _seconds_text(seconds: float) -> str:
    s = max(1, int(seconds))
    return f"00:{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def smoke_overrides(arch: str, device: str, precision: str, steps: int, seconds: float, tiny: bool,
                    run_dir: Path) -> list[str]:
    """The train.py overrides of one smoke run (``steg.bench.common.model_overrides``: the arch's preset)."""
    from steg.bench.common import model_overrides

    size, batch, tiles = (32, 4, 8) if tiny else (64, 16, 64)
    return [
        f"model={arch}", *model_overrides(arch), f"trainer={'gpu' if device == 'cuda' else 'cpu'}",
        f"trainer.precision={precision}", f"trainer.max_steps={steps}", "trainer.max_epochs=-1",
        f"trainer.max_time={_seconds_text(seconds)}", "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false", "trainer.num_sanity_val_steps=0",
        f"data.image_size={size}", f"data.batch_size={batch}", f"data.val_tiles={tiles}", "data.num_workers=0",
        "logger=csv", f"paths.run_dir={run_dir}", f"run_name=smoke_{arch}_{precision}", "seed=0",
    ]


def smoke_config(arch: str, device: str, precision: str, steps: int, seconds: float, tiny: bool, run_dir: Path):
    """The composed config of one smoke run; with ``tiny`` the net's ``tiny()`` arguments set in it."""
    from omegaconf import open_dict

    from steg.nets import net_class

    cfg = _compose(smoke_overrides(arch, device, precision, steps, seconds, tiny, run_dir))
    if tiny:
        with open_dict(cfg):
            for key, value in net_class(arch).tiny().items():
                cfg.model[key] = value
    return cfg


def host_syncs(arch: str, tiny: bool) -> int | None:
    """CUDA only: host syncs in one training step (hide, distortion-free reveal, loss, backward) after a warm-up."""
    import warnings

    import torch
    from hydra.utils import instantiate

    if not torch.cuda.is_available():
        return None
    cfg = smoke_config(arch, "cuda", "32", 1, 1, tiny, Path("unused"))
    net = instantiate(cfg.model).cuda().train()
    cover, secret = torch.rand(2, 4, 3, 64, 64, device="cuda").unbind(0)
    for _ in range(2):
        out = net(cover, secret, quantize=True)
        (out["stego"] - cover).square().mean().add((out["revealed"] - out["target"]).square().mean()).backward()
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            out = net(cover, secret, quantize=True)
            (out["stego"] - cover).square().mean().add((out["revealed"] - out["target"]).square().mean()).backward()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message).lower() for w in caught)


def smoke(device: str, steps: int, seconds: float, tiny: bool, work: Path, archs: list[str]) -> dict[str, Any]:
    """Every architecture in bf16-mixed and fp32, same seed and steps: validation figures and their differences."""
    import torch

    from steg.training.loop import train

    rows = []
    keys = ("val/psnr_stego", "val/ssim_stego", "val/psnr_secret", "val/ssim_secret", "val/loss")
    for arch in archs:
        row: dict[str, Any] = {"model": arch}
        for precision in ("bf16-mixed", "32"):
            run_dir = work / f"smoke-{arch}-{precision}"
            t0 = time.monotonic()
            try:
                train(smoke_config(arch, device, precision, steps, seconds, tiny, run_dir))
                report = json.loads((run_dir / "metrics.json").read_text())
                final = report.get("final", {})
                row[precision] = {"status": report.get("status"), "steps": report.get("steps"),
                                  "seconds": round(time.monotonic() - t0, 1), **{k: final.get(k) for k in keys}}
            except Exception as exc:
                row[precision] = {"status": "error", "error": f"{type(exc).__name__}: {exc}".splitlines()[0][:300],
                                  "traceback": traceback.format_exc(limit=-4)}
            if device == "cuda":
                torch.cuda.empty_cache()
        bf, fp = row["bf16-mixed"], row["32"]
        if bf.get("status") == "finished" and fp.get("status") == "finished":
            row["delta"] = {k: (None if bf.get(k) is None or fp.get(k) is None else bf[k] - fp[k]) for k in keys}
        try:
            row["host_syncs_per_step"] = host_syncs(arch, tiny) if device == "cuda" else None
        except Exception as exc:
            row["host_syncs_per_step"] = f"error: {type(exc).__name__}: {exc}".splitlines()[0][:200]
        rows.append(row)
        print(f"  {arch}: bf16 {bf.get('val/psnr_stego')} / {bf.get('val/psnr_secret')} dB, "
              f"fp32 {fp.get('val/psnr_stego')} / {fp.get('val/psnr_secret')} dB", flush=True)
    failed = [f"{r['model']} {p}: {r[p].get('error') or r[p].get('status')}" for r in rows
              for p in ("bf16-mixed", "32") if r[p].get("status") != "finished"]
    if failed:
        raise SmokeFailed("; ".join(failed), rows)
    return {"steps": steps, "rows": rows}


# -- subprocess stages -----------------------------------------------------------------------------
def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env.setdefault("WANDB_MODE", "offline")
    env.setdefault("WANDB_SILENT", "true")
    return env


def _run(argv: list[str], timeout: float) -> dict[str, Any]:
    """Run ``python argv`` from the repository root; raise with its last stderr line if it fails."""
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, *argv], capture_output=True, text=True, cwd=ROOT, env=_env(),
                          timeout=max(10, timeout))
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:] or ["no output"]
        raise RuntimeError(f"`python {' '.join(argv)}` exited {proc.returncode}: {' | '.join(tail)}")
    return {"command": "python " + " ".join(argv), "wall_s": round(time.monotonic() - t0, 1)}


def cli(device: str, tiny: bool, work: Path, timeout: float) -> dict[str, Any]:
    """``steg eval`` and ``steg analyze`` with ``--device`` on the embedded held-out photos (shipped default model)."""
    photos = work / "photos"
    _run(["-m", "steg", "samples", str(photos)], timeout)
    size = "64"
    ev = _run(["-m", "steg", "eval", "--device", device, "--covers", str(photos), "--size", size, "--limit", "4",
               "--json", str(work / "eval.json"), "--force"], timeout)
    steps = "4" if tiny else "100"
    an = _run(["-m", "steg", "analyze", "--device", device, "--images", str(photos), "--out", str(work / "analyze"),
               "--size", size, "--limit", "3", "--thief-steps", steps, "--detector-steps", steps, "--force"], timeout)
    names = sorted(p for p in photos.iterdir() if p.suffix == ".png")[:2]
    hide = _run(["-m", "steg", "hide", str(names[0]), str(names[1]), "-o", str(work / "stego.png"), "--device", device,
                 "--key", "gpu-check", "--force"], timeout)
    reveal = _run(["-m", "steg", "reveal", str(work / "stego.png"), "-o", str(work / "revealed.png"), "--device", device,
                   "--key", "gpu-check", "--force"], timeout)
    evaluation = json.loads((work / "eval.json").read_text())
    analysis = json.loads((work / "analyze" / "analyze.json").read_text())
    summary = {k: v for k, v in evaluation.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return {"hide": hide, "reveal": reveal, "onnx": _onnx_export(device, work), "eval": {**ev, "summary": summary},
            "analyze": {**an, "quality": analysis["quality"], "thief_psnr": analysis["thief"].get("psnr"),
                        "steganalyser": analysis["detect"].get("steganalyser"), "seconds": analysis["seconds"]}}


def _onnx_export(device: str, work: Path) -> dict[str, Any]:
    """The shipped default model loaded on ``device`` and exported to ONNX (traced there); skipped without onnx."""
    try:
        import onnx  # noqa: F401  (the optional [onnx] extra)
    except ImportError:
        return {"status": "skipped", "reason": "onnx is not installed (pip install onnx)"}
    from steg.inference.model import load_model
    from steg.browser.onnx import export_onnx

    t0 = time.monotonic()
    paths = export_onnx(load_model("default", device=device), work / "default.onnx", force=True)
    return {"status": "ok", "seconds": round(time.monotonic() - t0, 1),
            "bytes": {k: p.stat().st_size for k, p in paths.items()}}


def bench(device: str, tiny: bool, work: Path, timeout: float, archs: list[str]) -> dict[str, Any]:
    """``python -m steg.bench --parts speed``: eager fp32 vs the fast path, one bench call per architecture.

    One call each, so that an architecture whose ``torch.compile`` warm-up runs out of
    time costs only its own row; ``timeout`` is shared out among them.
    """
    rows, errors, fast_path, commands = [], [], None, []
    t_end = time.monotonic() + timeout
    for i, arch in enumerate(archs):
        out = work / f"bench-{arch}"
        argv = ["-m", "steg.bench", "--parts", "speed", "--device", device, "--out", str(out), "--models", arch]
        argv += ["--tiny", "--seconds", "1", "--batch", "4", "--size", "32"] if tiny else ["--seconds", "4", "--batch", "64"]
        share = (t_end - time.monotonic()) / (len(archs) - i)
        try:
            commands.append(_run(argv, share)["command"])
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            errors.append(f"{arch}: {type(exc).__name__}: {str(exc)[-300:]}")
            continue
        speed = json.loads((out / "bench.json").read_text()).get("speed") or {}
        fast_path = speed.get("fast_path", fast_path)
        rows += [{"model": r["model"], "speedup": r["speedup"],
                  **{f"{m}_{k}": r[m].get(k) for m in ("eager", "fast")
                     for k in ("images_per_s", "peak_mb", "gpu_utilisation", "psnr_stego", "psnr_secret", "steps")}}
                 for r in speed.get("rows", [])]
    if errors:
        raise SmokeFailed("; ".join(errors), rows)
    return {"commands": commands, "fast_path": fast_path, "rows": rows}


def hinet_div2k(device: str, tiny: bool, work: Path, seconds: float) -> dict[str, Any]:
    """``experiment=hinet_div2k`` on the embedded photos for ``seconds`` (the paper preset, as a researcher runs it)."""
    run_dir = work / "hinet_div2k"
    base = ["train.py", "experiment=hinet_div2k", "data=sample", f"trainer={'gpu' if device == 'cuda' else 'cpu'}",
            f"trainer.max_time={_seconds_text(seconds)}", "logger=csv", "trainer.enable_progress_bar=false",
            f"hydra.run.dir={run_dir}"]
    if tiny:
        from steg.nets import net_class

        from steg.bench.common import _hydra_value

        base += [f"model.{k}={_hydra_value(v)}" for k, v in net_class("hinet").tiny().items()]
        base += ["data.image_size=32", "data.batch_size=4", "data.val_tiles=8", "trainer.max_epochs=1"]
    ran = _run(base, seconds + 120)  # the preset as a researcher runs it (issue 19: it could not start)
    report = json.loads((run_dir / "metrics.json").read_text())
    final = report.get("final", {})
    return {**ran, "status_of_run": report.get("status"), "steps": report.get("steps"),
            **{k: final.get(k) for k in ("val/psnr_stego", "val/psnr_secret", "val/ssim_stego", "val/ssim_secret")}}


# -- report ---------------------------------------------------------------------------------------
def _f(value: Any, digits: int = 2) -> str:
    return "-" if not isinstance(value, (int, float)) else f"{value:.{digits}f}"


def markdown(result: dict[str, Any]) -> str:
    """A short summary of ``result`` (check.json)."""
    env, stages = result["env"], result["stages"]
    lines = [f"# steg GPU check: {env.get('card') or env['device']}", "",
             f"{env['date']}; torch {env['torch']} (CUDA {env['cuda']}), Lightning {env['lightning']}, "
             f"torchmetrics {env['torchmetrics']}; `{result['command']}`; {result['seconds']:.0f} s in all.", "",
             "| stage | status | seconds | note |", "|---|---|---|---|"]
    for name, st in stages.items():
        note = st.get("error") or st.get("reason") or ""
        lines.append(f"| {name} | {st['status']} | {_f(st.get('seconds'), 1)} | {note[:160]} |")
    smoke_rows = stages.get("smoke", {}).get("rows") or []
    if smoke_rows:
        lines += ["", f"Smoke training, {stages['smoke'].get('steps')} steps, validation (8-bit stego), "
                  "stego / secret PSNR (dB) and SSIM:", "",
                  "| model | steps | bf16-mixed | fp32 | bf16 - fp32 (PSNR) | host syncs / step |", "|---|---|---|---|---|---|"]
        for r in smoke_rows:
            cell = lambda p: (f"{_f(r[p].get('val/psnr_stego'))} / {_f(r[p].get('val/psnr_secret'))} dB, "  # noqa: E731
                              f"{_f(r[p].get('val/ssim_stego'), 3)} / {_f(r[p].get('val/ssim_secret'), 3)}")
            d = r.get("delta") or {}
            lines.append(f"| {r['model']} | {r['bf16-mixed'].get('steps')} / {r['32'].get('steps')} | "
                         f"{cell('bf16-mixed')} | {cell('32')} | "
                         f"{_f(d.get('val/psnr_stego'))} / {_f(d.get('val/psnr_secret'))} | {r.get('host_syncs_per_step')} |")
    bench_rows = stages.get("bench", {}).get("rows") or []
    if bench_rows:
        lines += ["", f"Training speed (`steg.bench --parts speed`), fast path {stages['bench'].get('fast_path')}:", "",
                  "| model | fp32 eager images/s | fast images/s | speed-up | peak MB (fast) | GPU util. % (fast) |",
                  "|---|---|---|---|---|---|"]
        for r in bench_rows:
            lines.append(f"| {r['model']} | {_f(r['eager_images_per_s'], 0)} | {_f(r['fast_images_per_s'], 0)} | "
                         f"{_f(r['speedup'])} | {_f(r['fast_peak_mb'], 0)} | {_f(r['fast_gpu_utilisation'], 0)} |")
    h = stages.get("hinet_div2k", {})
    if h.get("status") == "ok":
        lines += ["", f"`experiment=hinet_div2k data=sample`: {h.get('steps')} steps, stego / secret PSNR "
                  f"{_f(h.get('val/psnr_stego'))} / {_f(h.get('val/psnr_secret'))} dB"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    p.add_argument("--tiny", action="store_true", help="tiny nets, images and budgets (the CPU test of this script)")
    p.add_argument("--out", default=str(ROOT / "experiments" / "gpu"), help="folder for check.json and check.md")
    p.add_argument("--budget-s", type=float, default=None, help="wall-clock budget (default: 470 s; 300 s with --tiny)")
    p.add_argument("--steps", type=int, default=None, help="smoke training steps per run (default: 200; 4 with --tiny)")
    p.add_argument("--hinet-s", type=float, default=None, help="seconds of hinet_div2k (default: 120; 10 with --tiny)")
    p.add_argument("--models", default=None, help="comma list of architectures (default: every registered one)")
    p.add_argument("--bench-models", default=None,
                   help="architectures timed by the speed bench (default: unet,hinet; unet with --tiny)")
    args = p.parse_args(argv)
    args.bench_models = args.bench_models or ("unet" if args.tiny else "unet,hinet")
    missing = missing_imports()
    if missing:
        print(f"gpu-check: missing Python packages: {' '.join(missing)} (pip install {' '.join(missing)}; "
              "keep the installed CUDA torch)", file=sys.stderr)
        return 2
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print(f"gpu-check: --device cuda but torch {torch.__version__} sees no CUDA GPU; "
              "use --device cpu --tiny to test the script", file=sys.stderr)
        return 2
    sys.path.insert(0, str(ROOT))
    from steg.nets import ARCHITECTURES

    archs = args.models.split(",") if args.models else list(ARCHITECTURES)
    steps = args.steps or (4 if args.tiny else 200)
    hinet_s = args.hinet_s or (10.0 if args.tiny else 120.0)
    budget = Budget(args.budget_s or (300.0 if args.tiny else 470.0))
    run_seconds = 60.0 if args.tiny else 12.0  # per smoke run: a guard on slow architectures (steps are reported)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    stages: dict[str, Any] = {}
    result: dict[str, Any] = {"command": "python experiments/gpu/check.py " + " ".join(argv if argv is not None else sys.argv[1:]),
                              "env": environment(args.device), "stages": stages}
    with tempfile.TemporaryDirectory(prefix="steg-gpu-check-") as tmp:
        work = Path(tmp)
        stage(stages, "smoke", budget, 30, lambda: smoke(args.device, steps, run_seconds, args.tiny, work, archs))
        stage(stages, "cli", budget, 20, lambda: cli(args.device, args.tiny, work, max(30.0, budget.left())))
        # --bench-models (default unet and hinet, the nets of the speed aims): every architecture's compile
        # warm-up does not fit in 8 minutes; `make bench ARGS="--parts speed --device cuda"` times them all
        bench_archs = [a for a in args.bench_models.split(",") if a in archs] or archs[:1]
        stage(stages, "bench", budget, 30 + hinet_s,
              lambda: bench(args.device, args.tiny, work, max(30.0, budget.left() - hinet_s - 20), bench_archs))
        stage(stages, "hinet_div2k", budget, min(hinet_s, 10) + 10,
              lambda: hinet_div2k(args.device, args.tiny, work, max(5.0, min(hinet_s, budget.left() - 25))))
    result["seconds"] = round(time.monotonic() - t0, 1)
    result["ok"] = all(s["status"] == "ok" for s in stages.values())
    from steg.io import json_safe, write_text

    write_text(out / "check.json", json.dumps(json_safe(result), indent=2, allow_nan=False) + "\n")
    write_text(out / "check.md", markdown(result))
    print(f"wrote {out / 'check.json'} and {out / 'check.md'}: "
          f"{'all stages ok' if result['ok'] else 'FAILED: ' + ', '.join(k for k, v in stages.items() if v['status'] != 'ok')}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
