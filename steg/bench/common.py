"""What the bench's parts share: the models measured, how they are built, the held-out photos, workers.

A *target* is one row of the tables: an architecture (``conf/model/NAME.yaml``,
trained by the quality part into ``--runs-dir``) or a shipped model
(``steg/pretrained/NAME.safetensors``, :func:`steg.inference.files.shipped_models`).
Speed, inference and quality measure architectures; security and robustness
measure both, side by side.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

ROOT = Path(__file__).resolve().parents[2]
#: ``--models shipped:NAME`` picks the shipped model where an architecture has the same name.
SHIPPED_PREFIX = "shipped:"
#: The passphrase of keyed models in the security and robustness parts (a benchmark key, public
#: on purpose: the attackers measured never see it; anyone may rerun the commands with it).
BENCH_KEY = "steg-bench"
#: The digital method's profiles (``steg.digital``): rows of the security and robustness tables, measured
#: like a shipped model (no training); ``load_model("digital:PROFILE")``.
DIGITAL_TARGETS = ("digital:default", "digital:capacity", "digital:stealth", "digital:robust")


class BenchError(RuntimeError):
    """A measurement that failed (a worker, a training run): one line, the finished parts are kept."""


def fail(message: str) -> SystemExit:
    """A one-line usage error of ``python -m steg.bench``."""
    return SystemExit(f"steg.bench: error: {message}")


def models() -> tuple[str, ...]:
    """The registered architectures (``steg.nets.ARCHITECTURES``), whose names are their configs."""
    from steg.nets import ARCHITECTURES

    return tuple(ARCHITECTURES)


@dataclass(frozen=True)
class Target:
    """One model of the tables: ``arch`` (a config name) or ``shipped`` (a shipped model's name, or
    ``digital:PROFILE``, the digital method)."""

    arch: str | None = None
    shipped: str | None = None

    @property
    def name(self) -> str:
        return self.arch or self.shipped  # type: ignore[return-value]

    @property
    def kind(self) -> str:
        return "architecture" if self.arch else "shipped"

    @property
    def label(self) -> str:
        """How the tables name it: ``qim``, or ``default (shipped)``."""
        if self.shipped in DIGITAL_TARGETS:
            return self.shipped
        return self.arch if self.arch else f"{self.shipped} (shipped)"


def digital_payload(model) -> dict[str, Any]:
    """``{"payload": ...}`` (bits per value, change rate, codecs) for the digital method's rows, else ``{}``."""
    infos = getattr(model, "last_info", None)
    if not infos:
        return {}
    from steg.digital.method import payload_summary

    return {"payload": payload_summary(infos)}


def resolve_targets(text: str | None) -> list[Target]:
    """``--models`` -> targets. Default: every registered architecture, then every shipped model.

    An entry is an architecture (``conf/model/NAME.yaml``), a shipped model, or
    ``shipped:NAME`` (the shipped model where an architecture has the same name).
    """
    from steg.inference.files import shipped_models

    shipped = shipped_models()
    if text is None:
        return ([Target(arch=m) for m in models()] + [Target(shipped=s) for s in shipped]
                + [Target(shipped=d) for d in DIGITAL_TARGETS])
    targets: list[Target] = []
    for name in (n.strip() for n in text.split(",")):
        if not name:
            continue
        if name.startswith(SHIPPED_PREFIX):
            stem = name[len(SHIPPED_PREFIX):]
            if stem not in shipped:
                raise fail(f"--models: {name!r}: no shipped model steg/pretrained/{stem}.safetensors "
                           f"(shipped models: {', '.join(shipped) or 'none'})")
            target = Target(shipped=stem)
        elif name in DIGITAL_TARGETS:
            target = Target(shipped=name)
        elif (ROOT / "conf" / "model" / f"{name}.yaml").is_file():
            target = Target(arch=name)
        elif name in shipped:
            target = Target(shipped=name)
        else:
            raise fail(f"--models: {name!r} is neither an architecture (no config conf/model/{name}.yaml; "
                       f"architectures: {', '.join(sorted(models()))}) nor a shipped model "
                       f"(steg/pretrained/{name}.safetensors; shipped: {', '.join(shipped) or 'none'})")
        if target not in targets:
            targets.append(target)
    if not targets:
        raise fail(f"--models {text!r} names no model")
    return targets


# -- model construction (from the Hydra configs, so the bench measures what train.py builds) --
def preset(model: str) -> str | None:
    """The architecture's CPU experiment preset (``conf/experiment/MODEL_cpu.yaml``), if it has one.

    Its recommended training settings (``experiment=hinet_cpu``: gradient clipping) go into
    every run of the architecture; the bench's own settings (budget, beta, schedule) win.
    """
    name = f"{model}_cpu"
    return name if (ROOT / "conf" / "experiment" / f"{name}.yaml").is_file() else None


def _hydra_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_hydra_value(v) for v in value) + "]"
    if isinstance(value, dict):  # payload's tiny(): the inner net's arguments
        return "{" + ",".join(f"{k}:{_hydra_value(v)}" for k, v in value.items()) + "}"
    return str(value)


def model_overrides(model: str, tiny: bool = False) -> list[str]:
    """Hydra overrides every run of ``model`` gets: its preset, and with ``tiny`` its ``tiny()`` arguments."""
    out = [f"experiment={p}"] if (p := preset(model)) else []
    if tiny:
        from hydra.utils import get_class

        cls = get_class(compose(model).model._target_)
        out += [f"model.{k}={_hydra_value(v)}" for k, v in cls.tiny().items()]
    return out


def compose(name: str, channels: int = 3, overrides: Sequence[str] = ()):
    """The ``train.py`` config with ``model=name`` (and ``overrides``), as Hydra composes it."""
    from hydra import compose as hydra_compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return hydra_compose("train", overrides=[f"model={name}", f"channels={channels}", *overrides])


def build_model(name: str, channels: int = 3, tiny: bool = False):
    """The net ``train.py model=name`` builds (untrained)."""
    from hydra.utils import instantiate

    return instantiate(compose(name, channels, model_overrides(name, tiny)).model)


# -- measuring ------------------------------------------------------------------------------
def peak_memory_mb(device: str) -> float:
    import torch

    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def run_worker(args: list[str]) -> dict[str, Any]:
    """Run one measurement in a fresh process; its last stdout line is the JSON result."""
    cmd = [sys.executable, "-m", "steg.bench", "--worker", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise BenchError(f"benchmark worker {' '.join(args)} failed: {tail[0]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def heldout_images(opts) -> Path:
    """The folder of held-out photos: ``--images``, else the 4 embedded ones copied (``steg samples``)
    into ``--runs-dir/heldout`` once. Every part that measures quality uses the same pairs."""
    if opts.images:
        return Path(opts.images)
    folder = Path(opts.runs_dir) / "heldout"
    from steg.data import sample_photo_paths

    if not all((folder / f"{p.stem}.png").is_file() for p in sample_photo_paths("val")):
        from steg.cli import main as steg_main

        if steg_main(["samples", str(folder), "--force"]) != 0:
            raise BenchError(f"could not write the held-out photos into {folder} (see the line above)")
    return folder


def heldout_paths(opts) -> list[Path]:
    """The held-out images in the order ``steg eval`` and ``steg analyze`` pair them (sorted; i hides i+1)."""
    from steg.io import find_images

    folder = heldout_images(opts)
    paths = find_images(folder)
    if len(paths) < 2:
        raise fail(f"--images {folder}: {len(paths)} images; at least 2 are needed (image i hides image i+1)")
    return paths


def hms(minutes: float) -> str:
    total = int(round(minutes * 60))
    return f"00:{total // 3600:02d}:{total % 3600 // 60:02d}:{total % 60:02d}"


def environment(device: str, argv: Sequence[str]) -> dict[str, Any]:
    """The machine and the command, recorded with every part."""
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
            "date": time.strftime("%Y-%m-%d %H:%M"), "command": "python -m steg.bench " + " ".join(argv)}
