"""``compare.html``: one self-contained page (every PNG embedded as base64) with the comparison."""

from __future__ import annotations

import base64
import html
from typing import Sequence

from steg.report.rank import Ranking
from steg.report.runs import CompareError
from steg.report.tables import WINNER_MARK, higher_or_lower, ranked_by, table_rows

__all__ = ["html_report"]

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f2f2f2; }
td.l, th.l { text-align: left; }
tr.winner { background: #e8f6e8; font-weight: bold; }
tr.below { color: #777; }
p.winner { font-size: 1.1em; background: #f6f6e0; padding: 0.6em; border-left: 4px solid #b8b800; }
p.warning { background: #fde8e8; padding: 0.6em; border-left: 4px solid #c00; }
figure { display: inline-block; margin: 0.5em 1em 1em 0; vertical-align: top; }
figcaption { font-size: 0.85em; margin-bottom: 0.3em; }
img { max-width: 100%; }
code { background: #f4f4f4; padding: 0 0.2em; }
"""


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _how_ranked(ranking: Ranking) -> str:
    e = html.escape
    if ranking.metric is None:
        return (f"Ranked by revealed PSNR among the runs whose stego PSNR reaches the floor of "
                f"{ranking.floor:g} dB, then the runs below the floor (marked <em>below</em>, greyed); "
                f"figures from the {'best checkpoint' if ranking.by == 'best' else 'final epoch'}. "
                "<em>front</em>: on the Pareto front, no other run has both a higher stego PSNR and a "
                "higher revealed PSNR. Neither figure depends on the loss or beta.")
    return (f"Ranked by the {e(ranked_by(ranking))} over validation epochs ({higher_or_lower(ranking.metric)} "
            f"is better). The PSNR and SSIM columns are at the "
            f"{'best checkpoint' if ranking.by == 'best' else 'final epoch'}.")


def html_report(ranking: Ranking, sentence: str, curves: bytes, pareto: bytes, sources: Sequence[str]) -> str:
    """The page: sentence, warning, table, Pareto plot, curves, each run's last image grid."""
    header, rows = table_rows(ranking)
    left = header.index("epochs")
    e = html.escape
    n = len(ranking.runs)

    def cls(i: int) -> str:
        return ' class="l"' if i < left else ""

    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>steg compare: {n} run{'s' if n != 1 else ''} by {e(ranked_by(ranking))}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>steg compare: {n} run{'s' if n != 1 else ''}</h1>",
        f'<p class="winner">{e(sentence)}</p>',
    ]
    if ranking.warning:
        parts.append(f'<p class="warning">Warning: {e(ranking.warning)}</p>')
    parts += [
        f"<p>{_how_ranked(ranking)} Winner marked {WINNER_MARK}. Validation figures are measured on held-out "
        "images with 8-bit stego and revealed images. "
        f"Sources: {', '.join('<code>' + e(s) + '</code>' for s in sources)}.</p>",
        "<table><thead><tr>" + "".join(f"<th{cls(i)}>{e(h)}</th>" for i, h in enumerate(header))
        + "</tr></thead><tbody>",
    ]
    for i, row in enumerate(rows):
        below = ranking.metric is None and i >= ranking.n_above
        kind = "winner" if ranking.runs[i] is ranking.winner else "below" if below else ""
        parts.append((f'<tr class="{kind}">' if kind else "<tr>")
                     + "".join(f"<td{cls(j)}>{e(str(c))}</td>" for j, c in enumerate(row)) + "</tr>")
    parts += [
        "</tbody></table>",
        "<h2>Hiding against reveal quality</h2>",
        f'<img alt="stego PSNR against revealed PSNR, Pareto front highlighted" src="{_data_uri(pareto)}">',
        "<h2>Validation curves</h2>",
        f'<img alt="validation curves of every run" src="{_data_uri(curves)}">',
        "<h2>Last validation image grid of each run</h2>",
        "<p>Columns: cover | secret | stego | revealed | amplified |stego - cover|.</p>",
    ]
    for run in ranking.runs:
        if run.grid is None:
            parts.append(f"<figure><figcaption>{e(run.label)}: no image grid</figcaption></figure>")
            continue
        try:
            png = run.grid.read_bytes()
        except OSError as exc:
            raise CompareError(f"{run.grid}: unreadable ({exc.strerror or exc})") from exc
        caption = f"{run.label} ({run.grid.stem.replace('_', ' ')})"
        parts.append(f"<figure><figcaption>{e(caption)}</figcaption>"
                     f'<img alt="{e(caption)}" src="{_data_uri(png)}"></figure>')
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
