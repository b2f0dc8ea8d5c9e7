"""Compare training runs: ``steg compare DIR... [--out DIR] [--metric val/loss] [--force]``.

A *run folder* is what ``train.py`` writes: it holds ``metrics.json`` and
``config.yaml`` (plus ``csv/metrics.csv``, ``images/epoch_*.png`` and, for a
Hydra job, ``.hydra/overrides.yaml``). A *sweep folder* (``runs/sweep_<time>``
of ``python train.py -m ...``) is searched recursively for run folders.

From those files alone (offline, no W&B needed) :func:`compare` builds

- a table of every run: its overrides (the swept keys; model and beta always),
  epochs, the ranking metric's best and final values and the validation PSNR/SSIM
  figures, ranked by the metric, winner first and marked; printed and written as
  ``compare.md`` and ``compare.csv``;
- ``compare_curves.png``: val/loss, val/psnr_stego and val/psnr_secret per epoch,
  every run on shared axes (from each run's CSV log);
- ``compare.html``: one self-contained page with the table, the curves and each
  run's last image grid (PNG embedded as base64), and a sentence saying who won
  on which metric and by how much.

Outputs are written through a temporary file and a rename and never overwrite
existing ones unless ``force``. Every user error is a :class:`CompareError`
with a one-line message. Imports no torch: the command starts fast.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

__all__ = [
    "CompareError",
    "Run",
    "CompareResult",
    "compare",
    "find_run_dirs",
    "load_run",
    "rank_runs",
    "higher_is_better",
    "winner_sentence",
    "OUTPUT_NAMES",
]

DEFAULT_METRIC = "val/loss"
CURVE_METRICS = ("val/loss", "val/psnr_stego", "val/psnr_secret")
FIGURE_METRICS = ("val/psnr_stego", "val/psnr_secret", "val/ssim_stego", "val/ssim_secret")
CSV_METRICS = ("val/loss", "val/psnr_stego", "val/ssim_stego", "val/apd_stego",
               "val/psnr_secret", "val/ssim_secret", "val/apd_secret")
OUTPUT_NAMES = {"md": "compare.md", "csv": "compare.csv", "png": "compare_curves.png", "html": "compare.html"}
LABELS = {
    "val/loss": "val loss",
    "val/psnr_stego": "stego PSNR",
    "val/psnr_secret": "secret PSNR",
    "val/ssim_stego": "stego SSIM",
    "val/ssim_secret": "secret SSIM",
    "val/apd_stego": "stego APD",
    "val/apd_secret": "secret APD",
}
WINNER_MARK = "*"


class CompareError(Exception):
    """A user-facing error; the message is one line."""


# --------------------------------------------------------------------------- #
# Finding and reading runs
# --------------------------------------------------------------------------- #


def _natural_key(path: Path) -> list[Any]:
    """Sort key where '10_cnn' comes after '9_cnn'."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(path))]


def is_run_dir(path: Path) -> bool:
    return (path / "metrics.json").is_file() and (path / "config.yaml").is_file()


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
            candidates = []
            for metrics in sorted(root.rglob("metrics.json"), key=_natural_key):
                run = metrics.parent
                if any(part.startswith(".") for part in run.relative_to(root).parts):
                    continue  # .hydra, .submitit, ...
                if is_run_dir(run):
                    candidates.append(run)
                else:
                    warnings.append(f"skipping {run}: metrics.json without config.yaml")
            for config in sorted(root.rglob("config.yaml"), key=_natural_key):
                run = config.parent
                if run.name != ".hydra" and not (run / "metrics.json").exists() and (run / ".hydra").is_dir():
                    warnings.append(f"skipping {run}: no metrics.json (the run failed or is still running)")
            if not candidates:
                raise CompareError(
                    f"{root}: no runs found (a run folder holds metrics.json and config.yaml, as train.py "
                    "writes them; a sweep folder holds run folders)"
                )
        for run in candidates:
            key = run.resolve()
            if key not in seen:
                seen.add(key)
                found.append(run)
    return found


@dataclass
class Run:
    """One finished training run, as read from its folder."""

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

    def value(self, metric: str, which: str = "best") -> float | None:
        """The metric's ``final`` value, its ``best`` over validation epochs (direction from
        the name), or its value ``at_best``: at the epoch of the best checkpoint (the
        run's ``best`` row). Figures other than the ranking metric are shown ``at_best``:
        a residual model's stego PSNR peaks at epoch 0, before it hides anything."""
        final = _num(self.final.get(metric))
        if which == "final":
            return final
        if which == "at_best":
            return _num(self.best.get(metric)) if self.best else final
        if metric in self.best_per_metric and _num(self.best_per_metric[metric]) is not None:
            return _num(self.best_per_metric[metric])
        points = [v for _, v in self.curves.get(metric, []) if math.isfinite(v)]
        if points:
            return max(points) if higher_is_better(metric) else min(points)
        if self.best.get("monitor") == metric and _num(self.best.get(metric)) is not None:
            return _num(self.best.get(metric))
        return final


def _num(value: Any) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def higher_is_better(metric: str) -> bool:
    """val/psnr_* and val/ssim_* are maximised; losses, loss terms (val/cover_psnr = -PSNR) and APD minimised."""
    return metric.rsplit("/", 1)[-1].startswith(("psnr_", "ssim_"))


def _read_overrides(run: Path) -> dict[str, str]:
    import yaml

    path = run / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return {}
    try:
        items = yaml.safe_load(path.read_text()) or []
    except (OSError, yaml.YAMLError) as exc:
        raise CompareError(f"{path}: unreadable ({' '.join(str(exc).split())})") from exc
    params: dict[str, str] = {}
    for item in items if isinstance(items, list) else []:
        text = str(item)
        if "=" not in text:
            continue
        key, value = text.split("=", 1)
        params[key.lstrip("+~").strip()] = value.strip()
    return params


def _read_curves(csv_path: Path) -> dict[str, list[tuple[int, float]]]:
    """{metric: [(epoch, value), ...]} from Lightning's CSV log (the last value of each epoch wins)."""
    per_metric: dict[str, dict[int, float]] = {}
    try:
        with csv_path.open(newline="") as fh:
            for row in csv.DictReader(fh):
                epoch = _num(row.get("epoch"))
                if epoch is None:
                    continue
                for key, text in row.items():
                    if key and key.startswith("val/") and text not in (None, ""):
                        value = _num(text)
                        if value is not None:
                            per_metric.setdefault(key, {})[int(epoch)] = value
    except (OSError, csv.Error, UnicodeDecodeError) as exc:
        raise CompareError(f"{csv_path}: unreadable CSV log ({' '.join(str(exc).split())})") from exc
    return {k: sorted(v.items()) for k, v in per_metric.items()}


def load_run(path: Path, warnings: list[str] | None = None) -> Run:
    """Read one run folder: metrics.json, config.yaml, .hydra/overrides.yaml, csv/metrics.csv, images/."""
    import yaml

    warnings = warnings if warnings is not None else []
    try:
        report = json.loads((path / "metrics.json").read_text())
    except FileNotFoundError as exc:
        raise CompareError(f"{path}: no metrics.json (not a finished run folder)") from exc
    except (OSError, ValueError) as exc:
        raise CompareError(f"{path / 'metrics.json'}: unreadable ({' '.join(str(exc).split())})") from exc
    try:
        config = yaml.safe_load((path / "config.yaml").read_text()) or {}
    except FileNotFoundError as exc:
        raise CompareError(f"{path}: no config.yaml (not a run folder written by train.py)") from exc
    except (OSError, yaml.YAMLError) as exc:
        raise CompareError(f"{path / 'config.yaml'}: unreadable ({' '.join(str(exc).split())})") from exc
    if not isinstance(report, dict) or not isinstance(config, dict):
        raise CompareError(f"{path}: metrics.json or config.yaml is not a mapping (not written by train.py?)")

    params = _read_overrides(path)
    model = params.get("model") or str(report.get("model") or _model_from_config(config))
    beta = params.get("beta") or str(report.get("beta", config.get("beta", "?")))
    final = {k: v for k, v in (report.get("final") or {}).items() if isinstance(v, (int, float))}
    csv_path = path / "csv" / "metrics.csv"
    if csv_path.is_file():
        curves, has_csv = _read_curves(csv_path), True
    else:
        warnings.append(f"{path}: no csv/metrics.csv; its curves show the final epoch only")
        epoch = final.get("epoch", report.get("epochs", 0))
        curves = {k: [(int(epoch), float(v))] for k, v in final.items() if k.startswith("val/")}
        has_csv = False
    grids = sorted((path / "images").glob("epoch_*.png"), key=_natural_key)
    run_name = str(config.get("run_name") or path.name)
    return Run(
        path=path,
        run_name=run_name,
        label=run_name,  # compare() makes labels unique
        params=params,
        model=model,
        beta=beta,
        epochs=report.get("epochs"),
        steps=report.get("steps"),
        final=final,
        best=report.get("best") or {},
        best_per_metric=report.get("best_per_metric") or {},
        curves=curves,
        grid=grids[-1] if grids else None,
        has_csv=has_csv,
    )


def _model_from_config(config: dict[str, Any]) -> str:
    target = str((config.get("model") or {}).get("_target_", "?"))
    return target.rsplit(".", 1)[-1].lower()


def _set_labels(runs: list[Run]) -> None:
    """Label = run_name (e.g. subpixel_beta0.5) where unique, else folder name, else parent/folder."""
    for attr in ("run_name", "folder", "parent"):
        if attr == "run_name":
            labels = [r.run_name for r in runs]
        elif attr == "folder":
            labels = [r.path.name for r in runs]
        else:
            labels = [f"{r.path.parent.name}/{r.path.name}" for r in runs]
        if len(set(labels)) == len(labels):
            break
    else:
        labels = [str(r.path) for r in runs]
    for run, label in zip(runs, labels):
        run.label = label


# --------------------------------------------------------------------------- #
# Ranking, table, sentence
# --------------------------------------------------------------------------- #


def rank_runs(runs: Iterable[Run], metric: str = DEFAULT_METRIC, by: str = "best") -> list[Run]:
    """Runs sorted by the metric (best first); runs without it last, in their order."""
    sign = -1.0 if higher_is_better(metric) else 1.0
    runs = list(runs)
    scored = [r for r in runs if r.value(metric, by) is not None]
    unscored = [r for r in runs if r.value(metric, by) is None]
    return sorted(scored, key=lambda r: sign * r.value(metric, by)) + unscored  # type: ignore[operator]


def _fmt(metric: str, value: float | None, unit: bool = False) -> str:
    if value is None:
        return "-"
    name = metric.rsplit("/", 1)[-1]
    if name.startswith("psnr_"):
        return f"{value:.2f}" + (" dB" if unit else "")
    if name.startswith("ssim_"):
        return f"{value:.4f}"
    if name.startswith("apd_"):
        return f"{value:.2f}"
    return f"{value:.4g}"


def _short(value: str) -> str:
    """A sampled float such as 0.0003574712922600243 shown as 0.0003575 (the CSV keeps every digit)."""
    text = str(value)
    if len(text) <= 8:
        return text
    try:
        return f"{float(text):.4g}"
    except ValueError:
        return text


def _varying_params(runs: Sequence[Run]) -> list[str]:
    """Override keys (other than model and beta) whose values differ between runs, in first-seen order."""
    keys: list[str] = []
    for run in runs:
        for key in run.params:
            if key not in keys and key not in ("model", "beta"):
                keys.append(key)
    return [k for k in keys if len({r.params.get(k) for r in runs}) > 1]


def _columns(metric: str, by: str) -> list[tuple[str, str, str]]:
    """(header, metric, which) of the metric columns."""
    other = "final" if by == "best" else "best"
    cols = [(f"{metric} {by}", metric, by), (f"{metric} {other}", metric, other)]
    for m in FIGURE_METRICS:
        for which in ("final", "at_best"):
            if m != metric and not (m.startswith("val/ssim") and which == "at_best"):
                label = "at best ckpt" if which == "at_best" else which
                cols.append((f"{LABELS.get(m, m)} {label}", m, which))
    return cols


def table_rows(ranked: Sequence[Run], metric: str, by: str) -> tuple[list[str], list[list[str]]]:
    params = _varying_params(ranked)
    header = ["rank", "run", "model", "beta", *params, "epochs", *(h for h, _, _ in _columns(metric, by))]
    rows = []
    winner = ranked[0] if ranked and ranked[0].value(metric, by) is not None else None
    for i, run in enumerate(ranked, 1):
        rank = f"{i}{WINNER_MARK}" if run is winner else str(i)
        cells = [rank, run.label, run.model, _short(run.beta), *(_short(run.params.get(k, "")) for k in params),
                 "-" if run.epochs is None else str(run.epochs)]
        cells += [_fmt(m, run.value(m, which)) for _, m, which in _columns(metric, by)]
        rows.append(cells)
    return header, rows


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Fixed-width text table: names left-aligned, figures (from 'epochs' on) right-aligned."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    left = list(header).index("epochs")

    def line(cells: Sequence[str]) -> str:
        out = [str(c).ljust(w) if i < left else str(c).rjust(w) for i, (c, w) in enumerate(zip(cells, widths))]
        return "  ".join(out).rstrip()

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), sep, *(line(r) for r in rows)])


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def esc(x: str) -> str:
        return str(x).replace("|", "\\|")

    lines = ["| " + " | ".join(esc(h) for h in header) + " |",
             "|" + "|".join("---" if i < header.index("epochs") else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _margin(metric: str, best: float, other: float) -> str:
    """How much better ``best`` is than ``other``: dB for PSNR, else relative."""
    if metric.rsplit("/", 1)[-1].startswith("psnr_"):
        diff = abs(best - other)
        return "tied" if round(diff, 2) == 0 else f"+{diff:.2f} dB"
    if other == 0:
        return "tied" if best == 0 else f"{abs(best - other):.4g} apart"
    pct = abs(best - other) / abs(other) * 100.0
    if round(pct, 1) == 0:
        return "tied"
    return f"{pct:.1f}% {'higher' if best > other else 'lower'}"


def _best_of(runs: Sequence[Run], metric: str, which: str) -> tuple[Run, float, Run | None, float | None] | None:
    ranked = [r for r in rank_runs(runs, metric, which) if r.value(metric, which) is not None]
    if not ranked:
        return None
    first = ranked[0]
    second = ranked[1] if len(ranked) > 1 else None
    return first, first.value(metric, which), second, second.value(metric, which) if second else None  # type: ignore[return-value]


def winner_sentence(runs: Sequence[Run], metric: str = DEFAULT_METRIC, by: str = "best") -> str:
    """E.g. 'subpixel_beta0.5 wins on val/loss (best 0.0123, next best 0.0150 by cnn_beta0.5: 18.0% lower); ...'."""
    top = _best_of(runs, metric, by)
    if top is None:
        return f"no run has a value for {metric}"
    run, value, second, second_value = top
    unit = _fmt(metric, value, unit=True)
    if second is None:
        parts = [f"{run.label} is the only run with {metric} ({by} {unit})"]
    else:
        margin = _margin(metric, value, second_value)
        verb = "ties" if margin == "tied" else "wins"
        parts = [f"{run.label} {verb} on {metric} ({by} {unit}, next best {_fmt(metric, second_value, unit=True)} "
                 f"by {second.label}{'' if margin == 'tied' else ': ' + margin})"]
    for m in ("val/psnr_stego", "val/psnr_secret"):
        if m == metric:
            continue
        top = _best_of(runs, m, "at_best")
        if top is None:
            continue
        r, v, s, sv = top
        extra = ""
        if s is not None and sv is not None:
            margin = _margin(m, v, sv)
            extra = f", tied with {s.label}" if margin == "tied" else f", {margin} over {s.label}"
        parts.append(f"best {LABELS[m]} at the best checkpoint: {r.label} ({_fmt(m, v, unit=True)}{extra})")
    return "; ".join(parts) + "."


# --------------------------------------------------------------------------- #
# Outputs
# --------------------------------------------------------------------------- #


def curves_png(runs: Sequence[Run], metric: str = DEFAULT_METRIC) -> bytes:
    """Validation curves of every run on shared axes, one panel per metric; PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker  # noqa: F401

    metrics = list(CURVE_METRICS) + ([metric] if metric not in CURVE_METRICS else [])
    ncol = max(1, min(4, len(runs)))
    legend_rows = math.ceil(len(runs) / ncol)
    height = 4.0 + 0.25 * legend_rows
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.2 * len(metrics), height), squeeze=False)
    cmap = plt.get_cmap("tab10" if len(runs) <= 10 else "tab20")
    epochs = [e for run in runs for points in run.curves.values() for e, _ in points]
    handles: dict[str, Any] = {}
    for ax, m in zip(axes[0], metrics):
        values: list[float] = []
        for i, run in enumerate(runs):
            points = run.curves.get(m, [])
            if not points:
                continue
            xs, ys = zip(*points)
            values += ys
            (line,) = ax.plot(xs, ys, marker="o", ms=4, lw=1.4, color=cmap(i % cmap.N), label=run.label)
            handles.setdefault(run.label, line)
        unit = " (dB)" if m.rsplit("/", 1)[-1].startswith("psnr_") else ""
        ax.set(title=f"{m}{unit}", xlabel="epoch")
        if m == "val/loss" and values and min(values) > 0 and max(values) > 10 * min(values):
            ax.set_yscale("log")  # losses spanning decades
        if epochs:
            ax.set_xlim(min(epochs) - 0.5, max(epochs) + 0.5)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True, min_n_ticks=1))
        ax.grid(alpha=0.3)
    if handles:
        fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=ncol, fontsize="small",
                   frameon=False)
    fig.tight_layout(rect=(0, 0.25 * legend_rows / height + 0.02, 1, 1))
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def csv_text(ranked: Sequence[Run], metric: str, by: str) -> str:
    winner = ranked[0] if ranked and ranked[0].value(metric, by) is not None else None
    params = _varying_params(ranked)
    metrics = [metric] + [m for m in CSV_METRICS if m != metric]
    header = ["rank", "winner", "run", "model", "beta", *params, "epochs", "steps", "ranked_by",
              *(f"{m} {w}" for m in metrics for w in ("best", "final")), "path"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for i, run in enumerate(ranked, 1):
        values = []
        for m in metrics:
            for w in ("best", "final"):
                v = run.value(m, w)
                values.append("" if v is None else repr(float(v)))
        writer.writerow([i, int(run is winner), run.label, run.model, run.beta,
                         *(run.params.get(k, "") for k in params), run.epochs, run.steps,
                         f"{metric} {by}", *values, str(run.path)])
    return buf.getvalue()


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f2f2f2; }
td.l, th.l { text-align: left; }
tr.winner { background: #e8f6e8; font-weight: bold; }
p.winner { font-size: 1.1em; background: #f6f6e0; padding: 0.6em; border-left: 4px solid #b8b800; }
figure { display: inline-block; margin: 0.5em 1em 1em 0; vertical-align: top; }
figcaption { font-size: 0.85em; margin-bottom: 0.3em; }
img { max-width: 100%; }
code { background: #f4f4f4; padding: 0 0.2em; }
"""


def _cls(column: int, left: int) -> str:
    return ' class="l"' if column < left else ""


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def html_report(ranked: Sequence[Run], metric: str, by: str, sentence: str, curves: bytes,
                sources: Sequence[str]) -> str:
    header, rows = table_rows(ranked, metric, by)
    left = header.index("epochs")
    e = html.escape
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>steg compare: {len(ranked)} runs by {e(metric)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>steg compare: {len(ranked)} run{'s' if len(ranked) != 1 else ''}</h1>",
        f'<p class="winner">{e(sentence)}</p>',
        f"<p>Ranked by the {e(by)} <code>{e(metric)}</code> over validation epochs "
        f"({'higher' if higher_is_better(metric) else 'lower'} is better; winner marked {WINNER_MARK}). "
        "Validation figures are measured on held-out images with 8-bit stego and revealed images. "
        f"Sources: {', '.join('<code>' + e(s) + '</code>' for s in sources)}.</p>",
        "<table><thead><tr>" + "".join(
            f'<th{_cls(i, left)}>{e(h)}</th>' for i, h in enumerate(header)) + "</tr></thead><tbody>",
    ]
    for row in rows:
        cls = ' class="winner"' if row[0].endswith(WINNER_MARK) else ""
        parts.append(f"<tr{cls}>" + "".join(
            f'<td{_cls(i, left)}>{e(str(c))}</td>' for i, c in enumerate(row)) + "</tr>")
    parts.append("</tbody></table>")
    parts.append("<h2>Validation curves</h2>")
    parts.append(f'<img alt="validation curves of every run" src="{_data_uri(curves)}">')
    parts.append("<h2>Last validation image grid of each run</h2>")
    parts.append("<p>Columns: cover | secret | stego | revealed | amplified |stego - cover|.</p>")
    for run in ranked:
        if run.grid is None:
            parts.append(f"<figure><figcaption>{e(run.label)}: no image grid</figcaption></figure>")
            continue
        try:
            png = run.grid.read_bytes()
        except OSError as exc:
            raise CompareError(f"{run.grid}: unreadable ({exc.strerror or exc})") from exc
        caption = f"{run.label} ({run.grid.stem.replace('_', ' ')})"
        parts.append(f'<figure><figcaption>{e(caption)}</figcaption>'
                     f'<img alt="{e(caption)}" src="{_data_uri(png)}"></figure>')
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass
class CompareResult:
    runs: list[Run]
    metric: str
    by: str
    table: str
    sentence: str
    out_dir: Path
    outputs: dict[str, Path]
    warnings: list[str] = field(default_factory=list)


def default_out_dir(dirs: Sequence[str | os.PathLike]) -> Path:
    """The first DIR if it is a sweep folder (not itself a run folder), else ./compare."""
    first = Path(dirs[0])
    return first if first.is_dir() and not is_run_dir(first) else Path("compare")


def compare(
    dirs: Sequence[str | os.PathLike],
    out: str | os.PathLike | None = None,
    metric: str = DEFAULT_METRIC,
    by: str = "best",
    force: bool = False,
) -> CompareResult:
    """Compare the runs under ``dirs``; write compare.md/.csv/_curves.png/.html into ``out``."""
    if by not in ("best", "final"):
        raise CompareError(f"rank by 'best' or 'final', got {by!r}")
    if not metric or not metric.strip():
        raise CompareError("--metric must name a logged metric, e.g. val/loss or val/psnr_secret")
    warnings: list[str] = []
    run_dirs = find_run_dirs(dirs, warnings)
    out_dir = Path(out) if out is not None else default_out_dir(dirs)
    if out_dir.exists() and not out_dir.is_dir():
        raise CompareError(f"--out {out_dir} exists and is not a folder")
    outputs = {k: out_dir / name for k, name in OUTPUT_NAMES.items()}
    existing = [p for p in outputs.values() if p.exists()]
    if existing and not force:
        names = ", ".join(p.name for p in existing)
        raise CompareError(f"{out_dir} already holds {names}; pass --force to overwrite, or --out DIR")
    for p in existing:
        if p.is_dir():
            raise CompareError(f"{p} is a folder; expected a file name")

    runs = [load_run(p, warnings) for p in run_dirs]
    _set_labels(runs)
    if not any(r.value(metric, by) is not None for r in runs):
        known = sorted({k for r in runs for k in r.final if k.startswith("val/")})
        raise CompareError(f"metric {metric} is in none of the runs' validation figures "
                           f"(known: {', '.join(known) or 'none: no validation epoch ran'})")
    ranked = rank_runs(runs, metric, by)
    header, rows = table_rows(ranked, metric, by)
    sentence = winner_sentence(ranked, metric, by)
    curves = curves_png(ranked, metric)
    sources = [str(d) for d in dirs]
    direction = "higher" if higher_is_better(metric) else "lower"
    md = "\n".join([
        f"# steg compare: {len(ranked)} run{'s' if len(ranked) != 1 else ''}",
        "",
        sentence,
        "",
        f"Ranked by the {by} `{metric}` ({direction} is better; winner marked {WINNER_MARK}). "
        f"Sources: {', '.join(f'`{s}`' for s in sources)}.",
        "",
        markdown_table(header, rows),
        "",
        f"![validation curves]({OUTPUT_NAMES['png']})",
        "",
    ])
    contents = {
        "md": md.encode(),
        "csv": csv_text(ranked, metric, by).encode(),
        "png": curves,
        "html": html_report(ranked, metric, by, sentence, curves, sources).encode(),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    for key, data in contents.items():
        _write_atomic(outputs[key], data)
    return CompareResult(runs=ranked, metric=metric, by=by, table=text_table(header, rows), sentence=sentence,
                         out_dir=out_dir, outputs=outputs, warnings=warnings)
