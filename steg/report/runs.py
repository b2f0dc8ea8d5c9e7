"""Finding run folders and reading one run: ``metrics.json``, ``config.yaml``, overrides, CSV log, grids.

A *run folder* is what ``train.py`` writes: it holds ``metrics.json`` and
``config.yaml`` (plus ``csv/metrics.csv``, ``images/epoch_*.png`` and, for a
Hydra job, ``.hydra/overrides.yaml``). A *sweep folder* (``runs/sweep_<time>``
of ``python train.py -m ...``) is searched recursively for run folders.

``metrics.json`` may hold ``null`` for a figure that was not finite, and, from
newer runs, ``wall_time_s`` and ``status`` (``finished``, ``interrupted`` or
``failed``); every reader here accepts their absence.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from steg.io import one_line
from steg.metrics import higher_is_better

__all__ = ["CompareError", "Run", "find_run_dirs", "is_run_dir", "load_run", "set_labels", "num"]


class CompareError(Exception):
    """A user-facing error of ``steg compare``; the message is one line."""


def num(value: Any) -> float | None:
    """``value`` as a finite float, else None (``null``, ``"nan"``, text, ``Infinity``)."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _natural_key(path: Path) -> list[Any]:
    """Sort key where '10_cnn' comes after '9_cnn'."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(path))]


def is_run_dir(path: Path) -> bool:
    return (path / "metrics.json").is_file() and (path / "config.yaml").is_file()


def _runs_under(root: Path, warnings: list[str]) -> list[Path]:
    """Run folders below a sweep folder (hidden folders such as .hydra skipped), naturally sorted."""
    found = []
    for metrics in sorted(root.rglob("metrics.json"), key=_natural_key):
        run = metrics.parent
        if any(part.startswith(".") for part in run.relative_to(root).parts):
            continue
        if is_run_dir(run):
            found.append(run)
        else:
            warnings.append(f"skipping {run}: metrics.json without config.yaml")
    for config in sorted(root.rglob("config.yaml"), key=_natural_key):
        run = config.parent
        if run.name != ".hydra" and not (run / "metrics.json").exists() and (run / ".hydra").is_dir():
            warnings.append(f"skipping {run}: no metrics.json (the run failed or is still running)")
    if not found:
        raise CompareError(f"{root}: no runs found (a run folder holds metrics.json and config.yaml, as "
                           "train.py writes them; a sweep folder holds run folders)")
    return found


def find_run_dirs(dirs: Sequence[str | os.PathLike], warnings: list[str] | None = None) -> list[Path]:
    """Run folders given directly or found (recursively) under sweep folders, in order, without repeats."""
    warnings = warnings if warnings is not None else []
    if not dirs:
        raise CompareError("no folder given: pass run folders or a sweep folder (e.g. runs/sweep_<time>)")
    found: list[Path] = []
    seen: set[Path] = set()
    for raw in dirs:
        root = Path(raw)
        if not root.exists():
            raise CompareError(f"{root} not found (expected a run folder or a sweep folder of runs)")
        if not root.is_dir():
            raise CompareError(f"{root} is not a folder (expected a run folder or a sweep folder of runs)")
        if is_run_dir(root):
            candidates = [root]
        elif (root / "config.yaml").is_file() and not (root / "metrics.json").exists():
            raise CompareError(f"{root} has config.yaml but no metrics.json: the run did not finish")
        else:
            candidates = _runs_under(root, warnings)
        for run in candidates:
            if run.resolve() not in seen:
                seen.add(run.resolve())
                found.append(run)
    return found


@dataclass
class Run:
    """One training run, as read from its folder.

    ``final`` and ``best`` are metrics.json's last validation row and the best
    checkpoint's row; ``curves`` maps each ``val/*`` metric to ``[(epoch, value)]``
    from the CSV log; ``config`` is the resolved ``config.yaml``.
    """

    path: Path
    run_name: str
    label: str
    params: dict[str, str]
    model: str
    beta: str
    epochs: int | None
    steps: int | None
    final: dict[str, float]
    best: dict[str, Any]
    best_per_metric: dict[str, float]
    curves: dict[str, list[tuple[int, float]]]
    grid: Path | None
    has_csv: bool = True
    wall_time_s: float | None = None
    status: str | None = None
    config: dict[str, Any] = field(default_factory=dict)

    def value(self, metric: str, which: str = "best") -> float | None:
        """The metric's ``final`` value, its ``best`` over validation epochs (direction from
        the name), or its value ``at_best``: at the epoch of the best checkpoint (the run's
        ``best`` row). Figures beside the ranking are shown ``at_best``: a residual model's
        stego PSNR peaks at epoch 0, before it hides anything."""
        final = num(self.final.get(metric))
        if which == "final":
            return final
        if which == "at_best":
            return num(self.best.get(metric)) if self.best else final
        if num(self.best_per_metric.get(metric)) is not None:
            return num(self.best_per_metric[metric])
        points = [v for _, v in self.curves.get(metric, []) if math.isfinite(v)]
        if points:
            return max(points) if higher_is_better(metric) else min(points)
        if self.best.get("monitor") == metric and num(self.best.get(metric)) is not None:
            return num(self.best.get(metric))
        return final


def _load_yaml(path: Path) -> Any:
    import yaml

    try:
        return yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise CompareError(f"{path}: unreadable ({one_line(exc, limit=200)})") from exc


def _read_overrides(run: Path) -> dict[str, str]:
    """{key: value} of the Hydra job's command-line overrides ('+'/'~' prefixes dropped)."""
    path = run / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return {}
    items = _load_yaml(path) or []
    params: dict[str, str] = {}
    for item in items if isinstance(items, list) else []:
        key, sep, value = str(item).partition("=")
        if sep:
            params[key.lstrip("+~").strip()] = value.strip()
    return params


def _read_csv(csv_path: Path) -> tuple[dict[str, list[tuple[int, float]]], int | None]:
    """({metric: [(epoch, value), ...]}, last step) from Lightning's CSV log; an epoch's last value wins."""
    per_metric: dict[str, dict[int, float]] = {}
    last_step: int | None = None
    try:
        with csv_path.open(newline="") as fh:
            for row in csv.DictReader(fh):
                step = num(row.get("step"))
                if step is not None:
                    last_step = max(int(step), last_step or 0)
                epoch = num(row.get("epoch"))
                if epoch is None:
                    continue
                for key, text in row.items():
                    value = num(text) if key and key.startswith("val/") else None
                    if value is not None:
                        per_metric.setdefault(key, {})[int(epoch)] = value
    except (OSError, csv.Error, UnicodeDecodeError) as exc:
        raise CompareError(f"{csv_path}: unreadable CSV log ({one_line(exc, limit=200)})") from exc
    return {k: sorted(v.items()) for k, v in per_metric.items()}, last_step


def _int(value: Any) -> int | None:
    x = num(value)
    return None if x is None else int(x)


def load_run(path: Path, warnings: list[str] | None = None) -> Run:
    """Read one run folder: metrics.json, config.yaml, .hydra/overrides.yaml, csv/metrics.csv, images/."""
    warnings = warnings if warnings is not None else []
    try:
        report = json.loads((path / "metrics.json").read_text())
    except FileNotFoundError as exc:
        raise CompareError(f"{path}: no metrics.json (not a finished run folder)") from exc
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise CompareError(f"{path / 'metrics.json'}: unreadable ({one_line(exc, limit=200)})") from exc
    try:
        config = _load_yaml(path / "config.yaml") or {}
    except FileNotFoundError as exc:
        raise CompareError(f"{path}: no config.yaml (not a run folder written by train.py)") from exc
    if not isinstance(report, dict) or not isinstance(config, dict):
        raise CompareError(f"{path}: metrics.json or config.yaml is not a mapping (not written by train.py?)")

    params = _read_overrides(path)
    final = {k: v for k, v in (report.get("final") or {}).items() if num(v) is not None}
    csv_path = path / "csv" / "metrics.csv"
    csv_step = None
    if csv_path.is_file():
        curves, csv_step = _read_csv(csv_path)
    else:
        warnings.append(f"{path}: no csv/metrics.csv; its curves show the final epoch only")
        epoch = _int(final.get("epoch", report.get("epochs"))) or 0
        curves = {k: [(epoch, float(v))] for k, v in final.items() if k.startswith("val/")}
    grids = sorted((path / "images").glob("epoch_*.png"), key=_natural_key)
    status = report.get("status")
    run_name = str(config.get("run_name") or path.name)
    return Run(
        path=path,
        run_name=run_name,
        label=run_name,  # set_labels() makes labels unique
        params=params,
        model=params.get("model") or str(report.get("model") or _model_from_config(config)),
        beta=params.get("beta") or str(report.get("beta", config.get("beta", "?"))),
        epochs=_int(report.get("epochs")),
        steps=_int(report.get("steps")) if _int(report.get("steps")) is not None else csv_step,
        final=final,
        best=report.get("best") or {},
        best_per_metric=report.get("best_per_metric") or {},
        curves=curves,
        grid=grids[-1] if grids else None,
        has_csv=csv_path.is_file(),
        wall_time_s=num(report.get("wall_time_s")),
        status=str(status) if status is not None else None,
        config=config,
    )


def _model_from_config(config: dict[str, Any]) -> str:
    model = config.get("model")
    target = str(model.get("_target_", "?")) if isinstance(model, dict) else "?"
    return target.rsplit(".", 1)[-1].lower()


def set_labels(runs: list[Run]) -> None:
    """Label = run_name (e.g. subpixel_beta0.5) where unique, else folder name, else parent/folder."""
    for labels in ([r.run_name for r in runs], [r.path.name for r in runs],
                   [f"{r.path.parent.name}/{r.path.name}" for r in runs]):
        if len(set(labels)) == len(labels):
            break
    else:
        labels = [str(r.path) for r in runs]
    for run, label in zip(runs, labels):
        run.label = label
