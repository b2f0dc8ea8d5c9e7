"""``bench.md``: the tables of every part in a bench report (one row per model)."""

from __future__ import annotations

from typing import Any

__all__ = ["markdown"]


def _num(value: Any, digits: int = 2, unit: str = "") -> str:
    """A figure, or "-" where it was not measured (None; NaN from an empty mean)."""
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    return f"{value:.{digits}f}{unit}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}%"


def _measured_by(section: dict[str, Any], env: dict[str, Any]) -> list[str]:
    """A line naming an earlier run's command and machine, for a part kept from it."""
    own = section.get("environment")
    if not own or own.get("command") == env.get("command") and own.get("date") == env.get("date"):
        return []
    when = f" on {own['date']}" if own.get("date") else ""
    return [f"Kept from an earlier run{when}: `{own['command']}` ({own['device_name']}).", ""]


def _speed(s: dict[str, Any]) -> list[str]:
    on = ", ".join(k for k, v in s["fast_path"].items() if v) or "nothing"
    lines = [f"### Training throughput, {s['size']}x{s['size']}, batch {s['batch']} (fast path: {on})", "",
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
        lines += ["", "GPU utilisation while timing, eager / fast: " + "; ".join(
            f"`{m}` {_pct(e)} / {_pct(f)}" for m, e, f in utilisation)]
    return lines


def _inference(s: dict[str, Any]) -> list[str]:
    lines = ["### Inference: `steg hide` + `steg reveal` of one image (fp32, untrained weights)", "",
             "| model | size | hide ms | reveal ms | total ms | peak MB |", "|---|---|---|---|---|---|"]
    for r in s["rows"]:
        lines.append(f"| `{r['model']}` | {r['size']}x{r['size']} | {r['hide_ms']:.0f} | {r['reveal_ms']:.0f} "
                     f"| **{r['total_ms']:.0f}** | {r['peak_mb']:.0f} |")
    return lines


def _cli(c: dict[str, Any]) -> list[str]:
    return [f"### `steg hide` / `steg reveal` as a user runs them ({c['size']}x{c['size']}, model "
            f"`{c['model']}`, a fresh process each, best of {c['runs']})", "",
            f"`steg hide`: **{c['hide_s']:.2f} s**; `steg reveal`: **{c['reveal_s']:.2f} s**",
            *(["", "Peak memory of `steg hide` (whole process, max RSS) against the cover's size:", "",
               "| cover | megapixels | peak MB |", "|---|---|---|",
               *(f"| {r['size']}x{r['size']} | {r['megapixels']:.2f} | {r['hide_peak_mb']:.0f} |"
                 for r in c.get("peak_memory", []))] if c.get("peak_memory") else [])]


def _quality(q: dict[str, Any]) -> list[str]:
    lines = [f"### Quality at a budget of {q['budget_min']:g} min of training each "
             f"(beta {q['beta']}, then `steg eval --size {q['eval_size']}` on {q['images']})", "",
             "| model | epochs (steps) | best epoch | stego PSNR / SSIM | revealed PSNR / SSIM "
             "| mean abs. error stego / revealed (0-255) |", "|---|---|---|---|---|---|"]
    for r in q["rows"]:
        name = f"`{r['model']}`" + (f" (`experiment={r['preset']}`)" if r.get("preset") else "")
        lines.append(f"| {name} | {r['epochs']} ({r['steps']}) | {r['best_epoch']} "
                     f"| **{r['psnr_stego']:.2f} dB** / {r['ssim_stego']:.3f} "
                     f"| **{r['psnr_secret']:.2f} dB** / {r['ssim_secret']:.3f} "
                     f"| {r['apd_stego']:.2f} / {r['apd_secret']:.2f} |")
    for r in q.get("references", []):  # the bar every net is judged against: nothing trained
        payload = f", {r['bits_per_value']:.3f} bit/value" if r.get("bits_per_value") is not None else ""
        lines.append(f"| `{r['model']}` (reference, nothing trained{payload}) | - | - "
                     f"| **{r['psnr_stego']:.2f} dB** / {r['ssim_stego']:.3f} "
                     f"| **{r['psnr_secret']:.2f} dB** / {r['ssim_secret']:.3f} "
                     f"| {r['apd_stego']:.2f} / {r['apd_secret']:.2f} |")
    return lines


def _model(row: dict[str, Any]) -> str:
    """A row's model: `qim` (an architecture's checkpoint), `default` (shipped) or `digital:stealth` (its payload)."""
    if row.get("payload"):  # the digital method: a hiding method, measured with the payload it carried
        p = row["payload"]
        return f"`{row['model']}` ({p['bits_per_value']:.3f} bit/value, change rate {p['change_rate']:.3f})"
    if str(row.get("model", "")).startswith("digital:"):
        return f"`{row['model']}`"
    return f"`{row['model']}`" + (" (shipped)" if row.get("kind") == "shipped" else "")


def _skipped(section: dict[str, Any]) -> list[str]:
    return [f"- {_model(s)}: not measured: {s['reason']}" for s in section.get("skipped", [])]


def _security(s: dict[str, Any]) -> list[str]:
    lines = [f"### Security: `steg analyze` of every model ({s['size']}x{s['size']} held-out pairs from "
             f"{s['images']}, 8-bit stego; thief {s['thief_steps']} and steganalyser {s['detector_steps']} steps; "
             f"keyed models with the key `{s['key']}`)", "",
             "PSNR (dB) against the secret of what each gives: `reveal` with the right key, a random wrong key "
             "and no key (a model without a keyed mode reveals the secret to anyone: its no-key figure is its "
             "revealed one), the best model-free read-out, and a reveal net trained by an attacker; a mid-grey "
             "image scores the last column. Steganalysis: best-threshold accuracy / AUROC on held-out 64x64 "
             "cover/stego crops (0.5 = blind).", "",
             "| model | key | stego / revealed | wrong key | no key | best keyless attack | learned thief "
             "| steganalyser | chi-square (PoV) | mid-grey |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in s["rows"]:
        keyless = f"{_num(r['best_keyless_psnr'])} ({r['best_keyless']})" if r.get("best_keyless") else "-"
        lines.append(
            f"| {_model(r)} | {'yes' if r['keyed'] else 'none'} "
            f"| {_num(r['psnr_stego'])} / {_num(r['psnr_secret'])} | {_num(r['wrong_key_psnr'])} "
            f"| {_num(r['no_key_psnr'])} | {keyless} | {_num(r['thief_psnr'])} "
            f"| {_num(r['steganalyser_best_accuracy'], 3)} / {_num(r['steganalyser_auroc'], 3)} "
            f"| {_num(r['chi_square_best_accuracy'], 3)} / {_num(r['chi_square_auroc'], 3)} "
            f"| {_num(r['grey_psnr'])} |")
    lines += ["", *_skipped(s), *(["", "Commands (each writes analyze.json/.md/.html):", ""] if s["rows"] else []),
              *[f"- {_model(r)}: `{r['command']}`" for r in s["rows"]]]
    return lines


def _robustness(s: dict[str, Any]) -> list[str]:
    names = ["clean", *s["attacks"]]
    lines = [f"### Robustness: revealed secret PSNR (dB) after real distortions of the 8-bit stego image "
             f"({s['size']}x{s['size']} held-out pairs from {s['images']}; Pillow codecs; keyed models with the key "
             f"`{s['key']}`)", "",
             "| model | key | stego PSNR | " + " | ".join(names) + " |", "|---|---|---|" + "---|" * len(names)]
    for r in s["rows"]:
        cells = [_num((r["attacks"].get(n) or {}).get("psnr_secret")) for n in names]
        lines.append(f"| {_model(r)} | {'yes' if r['keyed'] else 'none'} | {_num(r['psnr_stego'])} | "
                     + " | ".join(cells) + " |")
    lines += ["", *_skipped(s), *(["", "Commands:", ""] if s["rows"] else []),
              *[f"- {_model(r)}: `{r['command']}`" for r in s["rows"]]]
    return lines


SECTIONS = {"speed": _speed, "inference": _inference, "cli": _cli, "quality": _quality,
            "security": _security, "robustness": _robustness}


def markdown(report: dict[str, Any]) -> str:
    """The tables of every part in ``report`` (a ``bench.json``), in the order of :data:`SECTIONS`."""
    env = report["environment"]
    lines = [f"Device: {env['device_name']} ({env['threads']} threads); torch {env['torch']}; "
             f"command: `{env['command']}`", ""]
    for part, render in SECTIONS.items():
        if part in report:
            lines += [*_measured_by(report[part], env), *render(report[part]), ""]
    return "\n".join(lines)
