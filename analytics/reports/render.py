"""Write a brief out: one self-contained HTML page (plotly.js inline) or a Markdown summary."""

from __future__ import annotations

import base64
import gzip
import html
import re
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import plotly.graph_objects as go
import plotly.io as pio
import polars as pl
from plotly.offline import get_plotlyjs

from analytics.access.suppression import TOTAL_LABEL
from analytics.present.formatting import format_moment
from analytics.reports.model import Brief, Table

__all__ = ["render_html", "render_markdown"]

_PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}
_MD_ROWS = 12


_CSS = """
:root { --ink: #1f2328; --muted: #6b6b6b; --line: #e5e5e5; --accent: #0072b2;
        --soft: #f4f8fb; --warn: #d55e00; }
* { box-sizing: border-box; }
body { margin: 0; background: #fafafa; color: var(--ink);
       font: 15px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue",
       Arial, sans-serif; }
main { max-width: 1120px; margin: 0 auto; padding: 32px 28px 48px; background: #fff;
       min-height: 100vh; }
header { border-bottom: 3px solid var(--accent); padding-bottom: 14px; margin-bottom: 8px; }
h1 { font-size: 26px; margin: 0 0 6px; letter-spacing: -0.01em; }
h2 { font-size: 19px; margin: 34px 0 10px; padding-bottom: 4px;
     border-bottom: 1px solid var(--line); }
h3 { font-size: 14px; margin: 18px 0 6px; color: var(--muted); text-transform: uppercase;
     letter-spacing: 0.04em; }
.meta { color: var(--muted); font-size: 13px; margin: 0; }
.audience { margin: 10px 0 0; padding: 8px 12px; background: var(--soft);
            border-left: 4px solid var(--accent); font-size: 13.5px; }
.audience.product { border-left-color: #009e73; }
.note { margin: 12px 0 0; padding: 8px 12px; border-left: 4px solid #e69f00;
        background: #fff8eb; white-space: pre-wrap; }
nav { font-size: 13px; margin: 12px 0 0; color: var(--muted); }
nav a { color: var(--accent); text-decoration: none; margin-right: 14px; }
ul.sentences { margin: 6px 0 12px; padding-left: 20px; }
ul.sentences li { margin: 4px 0; }
.table-wrap { overflow-x: auto; margin: 6px 0 4px; }
table { border-collapse: collapse; font-size: 13px; min-width: 50%; }
th, td { padding: 5px 10px; border-bottom: 1px solid var(--line); text-align: left;
         vertical-align: top; }
th { background: var(--soft); font-weight: 600; vertical-align: bottom; }
th.num { text-align: right; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.total td { font-weight: 600; border-top: 2px solid #c9c9c9; }
td.hidden { color: var(--muted); font-style: italic; }
p.table-note { color: var(--muted); font-size: 12.5px; margin: 2px 0 10px; }
.figures { display: grid; grid-template-columns: minmax(0, 1fr); gap: 14px; margin-top: 12px; }
.figures.pair { grid-template-columns: repeat(2, minmax(0, 1fr)); }
@media (max-width: 900px) { .figures.pair { grid-template-columns: minmax(0, 1fr); } }
.figure { border: 1px solid var(--line); border-radius: 6px; padding: 6px; min-width: 0; }
footer { margin-top: 36px; color: var(--muted); font-size: 12.5px; }
@media print { body { background: #fff; } main { padding: 0; } .figure { break-inside: avoid; } }
@media screen and (prefers-color-scheme: dark) {
  :root { --ink: #e8e6e3; --muted: #a8a5a0; --line: #3a3936; --accent: #56b4e9;
          --soft: #1e2a33; }
  body { background: #0f0e0d; }
  main { background: #171614; }
  .note { background: #2e2614; }
  tr.total td { border-top-color: #5a5955; }
  .figure :is(.xtick, .ytick, .g-xtitle, .g-ytitle, .g-gtitle, .legend, .annotation,
             .colorbar) text { fill: var(--ink) !important; }
  .figure :is(.gridlayer, .zerolinelayer) path { stroke: var(--line) !important; }
  .figure path[style*="rgb(0, 0, 55)"] { stroke: var(--ink) !important; }
}
"""


def render_html(brief: Brief) -> str:
    """The brief as one self-contained HTML page.

    plotly.js is embedded once in the page, gzipped (:func:`_plotly_payload`) and
    inflated by the browser's own ``DecompressionStream`` before the charts are drawn;
    nothing is fetched from anywhere (no external script, style sheet, font or image), so
    the file opens offline. Every text is escaped.
    """
    esc = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(brief.title)}</title>",
        f"<style>{_CSS}</style>",
    ]
    figures = [f for s in brief.sections for f in s.figures]
    parts.append("</head><body><main><header>")
    parts.append(f"<h1>{esc(brief.title)}</h1>")
    parts.append(f'<p class="meta">{esc(" · ".join(brief.meta()))}</p>')
    parts.append(f'<p class="audience {brief.audience}">{esc(brief.audience_line())}</p>')
    if brief.note:
        parts.append(f'<p class="note">{esc(brief.note)}</p>')
    links = "".join(f'<a href="#{s.key}">{esc(s.title)}</a>' for s in brief.sections)
    parts.append(f"<nav>{links}</nav></header>")
    counter = iter(range(len(figures)))
    for section in brief.sections:
        parts.append(f'<section id="{section.key}"><h2>{esc(section.title)}</h2>')
        items = "".join(f"<li>{esc(s)}</li>" for s in section.sentences)
        parts.append(f'<ul class="sentences">{items}</ul>')
        parts += [_html_table(t, heading=t.title != section.title) for t in section.tables]
        if section.figures:
            pair = " pair" if len(section.figures) > 1 else ""
            parts.append(f'<div class="figures{pair}">')
            for fig in section.figures:
                div = pio.to_html(
                    fig,
                    full_html=False,
                    include_plotlyjs=False,
                    div_id=f"figure-{next(counter)}",
                    config=_PLOTLY_CONFIG,
                    default_height="380px",
                    default_width="100%",
                )  # its script waits for plotly.js: the loader runs it (_LOADER)
                div = _SCRIPT.sub(f'<script type="{_WAITING}">', div)
                parts.append(f'<div class="figure">{div}</div>')
            parts.append("</div>")
        parts.append("</section>")
    if figures:  # plotly.js, gzipped; the loader inflates it and draws the charts
        name, payload = _plotly_payload(figures)
        parts.append(f'<script type="application/gzip" id="plotly-js" title="{name}">')
        parts.append(f"{payload}</script>")
        parts.append(f"<script>/* {name}, MIT licence, gzipped above */{_LOADER}</script>")
    parts.append(
        f"<footer>Lookout · {esc(brief.label)} · {esc(brief.audience)} brief · generated "
        f"{esc(format_moment(brief.generated_at))}</footer></main></body></html>"
    )
    return "\n".join(parts)


def _html_table(table: Table, *, heading: bool = True) -> str:
    """A table, its cells' hover text (:attr:`Table.hover`) as ``title`` attributes; no
    heading of its own when it would repeat its section's."""
    esc = html.escape
    shown = table.text()
    hover = {c: table.frame[h].to_list() for c, h in table.hover.items()}
    numeric = set(table.numeric_columns())
    head = "".join(
        f'<th class="num">{esc(c)}</th>' if c in numeric else f"<th>{esc(c)}</th>"
        for c in shown.columns
    )
    rows = []
    for i, (raw, row) in enumerate(zip(table.frame.iter_rows(), shown.iter_rows(), strict=True)):
        total = bool({TOTAL_LABEL, "Total"} & {v for v in raw if isinstance(v, str)})
        cells = []
        for name, text in zip(shown.columns, row, strict=True):
            classes = [c for c in ("num" if name in numeric else "",) if c]
            if text == f"<{table.threshold}" and name in table.suppressed:
                classes.append("hidden")
            attr = f' class="{" ".join(classes)}"' if classes else ""
            if name in hover and hover[name][i]:
                attr += f' title="{esc(str(hover[name][i]))}"'
            cells.append(f"<td{attr}>{esc(text)}</td>")
        opening = '<tr class="total">' if total else "<tr>"
        rows.append(f"{opening}{''.join(cells)}</tr>")
    note = f'<p class="table-note">{esc(table.note)}</p>' if table.note else ""
    title = f"<h3>{esc(table.title)}</h3>" if heading else ""
    return (
        f'{title}<div class="table-wrap"><table><thead><tr>{head}</tr>'
        f"</thead><tbody>{''.join(rows)}</tbody></table></div>{note}"
    )


#: The type of a chart's script until plotly.js is there (the browser does not run it).
_WAITING = "text/x-plotly-figure"
_SCRIPT = re.compile(r'<script(?:\s+type="text/javascript")?>')
#: Inflates plotly.js (its base64 gzip in ``#plotly-js``), runs it, then each chart's
#: script in order, then fits each chart to its box. Without DecompressionStream (a
#: browser from before 2023) the charts' boxes say so.
_LOADER = (
    "(function () {"
    "var box = document.getElementById('plotly-js');"
    "function fail(e) { document.querySelectorAll('.plotly-graph-div').forEach(function (d) {"
    "d.textContent = 'This browser cannot draw the charts (' + e + ').'; }); }"
    "if (!window.DecompressionStream) { fail('no DecompressionStream'); return; }"
    "var raw = atob(box.textContent.trim()), bytes = new Uint8Array(raw.length);"
    "for (var i = 0; i < raw.length; i++) { bytes[i] = raw.charCodeAt(i); }"
    "var code = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'));"
    "new Response(code).text().then(function (js) {"
    "var lib = document.createElement('script'); lib.text = js; document.head.appendChild(lib);"
    f"document.querySelectorAll('script[type=\"{_WAITING}\"]').forEach(function (s) {{"
    "var run = document.createElement('script'); run.text = s.text; s.replaceWith(run); });"
    "document.querySelectorAll('.plotly-graph-div').forEach(function (d) {"
    "Plotly.Plots.resize(d); }); }).catch(fail); })();"
)
#: The trace types of plotly.js's cartesian bundle (``vendor/``, MIT licence).
_CARTESIAN = frozenset({
    "bar", "box", "contour", "heatmap", "histogram", "histogram2d", "histogram2dcontour",
    "image", "pie", "scatter", "scatterternary", "violin",
})  # fmt: skip
_VENDOR = Path(__file__).with_name("vendor") / "plotly-cartesian.min.js.gz"


def _plotly_payload(figures: Sequence[go.Figure]) -> tuple[str, str]:
    """plotly.js for ``figures``: its name and its gzip in base64.

    The cartesian bundle of plotly.js (scatter, bar, heatmap and the like: 1.5 MB, 0.5 MB
    gzipped), the same version as plotly's own, when every trace is of its types; else
    the whole library (4.8 MB, 1.5 MB gzipped).
    """
    types = {str(getattr(t, "type", None) or "scatter") for f in figures for t in f.data}
    return _gzipped("cartesian" if types <= _CARTESIAN else "full")


@cache
def _gzipped(which: str) -> tuple[str, str]:
    full = get_plotlyjs()
    js = full
    if which == "cartesian" and _VENDOR.is_file():
        js = gzip.decompress(_VENDOR.read_bytes()).decode("utf-8")
        if _version(js) != _version(full):  # plotly was upgraded: its own library
            js, which = full, "full"
    else:
        which = "full"
    js = _URL_SCHEME.sub(r"\1\\x3a//", js)
    packed = gzip.compress(js.encode("utf-8"), compresslevel=9, mtime=0)
    return f"plotly.js {_version(js)} ({which})", base64.b64encode(packed).decode("ascii")


def _version(js: str) -> str:
    r"""The version in a plotly.js bundle's header.

    >>> _version("/**\n* plotly.js (cartesian - minified) v4.1.1\n")
    'v4.1.1'
    """
    found = re.search(r"plotly\.js[^\n]*?(v\d+\.\d+\.\d+)", js[:400])
    return found.group(1) if found else "unknown"


_URL_SCHEME = re.compile(r"\b(https?)://", re.IGNORECASE)


def render_markdown(brief: Brief) -> str:
    """The brief as Markdown: headings, one bullet per sentence, small tables.

    Charts are in the HTML version only.
    """
    lines = [f"# {brief.title}", "", f"*{_md(' · '.join(brief.meta()))}*", ""]
    lines += [f"> {_md(brief.audience_line())}", ""]
    if brief.note:
        lines += [f"**Note:** {_md(brief.note)}", ""]
    for section in brief.sections:
        lines += [f"## {section.title}", ""]
        lines += [f"- {_md(s)}" for s in section.sentences]
        lines.append("")
        for table in section.tables:
            lines += _md_table(table)
    return "\n".join(lines).rstrip() + "\n"


def _md(text: str) -> str:
    """Escape what Markdown would read as markup (``<10`` and ``a_b`` stay readable).

    >>> _md("Spam <b>x</b> *y* [z](u) <10 fake_review")
    'Spam \\\\<b\\\\>x\\\\</b\\\\> \\\\*y\\\\* \\\\[z\\\\](u) <10 fake_review'
    """
    text = " ".join(text.split())
    text = re.sub(r"([\\`*\[\]|])", r"\\\1", text)
    return re.sub(r"<(?=[A-Za-z/!?])|(?<=[A-Za-z\"'/])>", lambda m: "\\" + m.group(0), text)


def _md_table(table: Table) -> list[str]:
    shown = table.text()
    numeric = set(table.numeric_columns())
    cut = shown.head(_MD_ROWS)
    if shown.height > _MD_ROWS and TOTAL_LABEL in shown.row(-1):
        cut = pl.concat([shown.head(_MD_ROWS - 1), shown.tail(1)])
    out = [f"**{_md(table.title)}**", ""]
    out.append("| " + " | ".join(_md(c) for c in shown.columns) + " |")
    out.append("| " + " | ".join("---:" if c in numeric else "---" for c in shown.columns) + " |")
    out += ["| " + " | ".join(_md(v) for v in row) + " |" for row in cut.iter_rows()]
    notes = [table.note] if table.note else []
    behind = [
        f"{row[0]}: {text}"
        for row, text in zip(shown.iter_rows(), _hover_texts(table), strict=True)
        if text
    ]
    if behind:  # the numbers behind the words, in a footnote (HTML: on hover)
        notes.append("Tests: " + "; ".join(behind) + ".")
    if cut.height < shown.height:
        notes.append(f"{shown.height - cut.height} more rows in the HTML brief.")
    if notes:
        out += ["", f"*{_md(' '.join(notes))}*"]
    return [*out, ""]


def _hover_texts(table: Table) -> list[str]:
    """Each row's hover texts (:attr:`Table.hover`) joined, empty where it has none."""
    if not table.hover:
        return [""] * table.frame.height
    columns = [table.frame[h].to_list() for h in table.hover.values()]
    return ["; ".join(str(v) for v in values if v) for values in zip(*columns, strict=True)]
