"""Readable, self-contained HTML reports of eval runs (and of run comparisons).

One file, no JavaScript, no network: inline CSS and inline SVG. A run's report has

* the run's facts (suite, dataset, commit, model tier, duration, configuration),
* the metrics as a table and as bars (metrics on a 0-1 scale),
* the suite's extra tables (per-intent scores, results by kind...),
* confusion matrices as heat-map tables (rows: expected, columns: predicted, shade: share of
  the row; large label sets show the labels with the most errors),
* the worst examples (lowest score first) with their input, expected and actual output,
  per-example metrics and the retrieved contexts (gold passages marked),
* every example in a collapsed table.

Everything shown is escaped: dataset text and model output are data, never markup.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evals.compare import Comparison
    from evals.core import RunRecord

WORST_EXAMPLES = 25
MAX_CONFUSION_LABELS = 30
MAX_CONTEXT_CHARS = 1200
_TIME_SUFFIXES = ("_ms", "_s", "_seconds")

_CSS = """
:root { --fg:#1f2328; --muted:#656d76; --line:#d0d7de; --bg:#f6f8fa; --good:#1a7f37;
        --bad:#cf222e; --accent:#0969da; }
* { box-sizing: border-box; }
body { font: 14px/1.5 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: var(--fg);
       margin: 0 auto; max-width: 1200px; padding: 24px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 32px 0 8px;
     border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 15px; margin: 16px 0 6px; }
.muted { color: var(--muted); } .good { color: var(--good); } .bad { color: var(--bad); }
table { border-collapse: collapse; margin: 8px 0; font-size: 13px; }
th, td { border: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: var(--bg); font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.facts td:first-child { color: var(--muted); }
.example { border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; margin: 10px 0; }
.example header { display: flex; gap: 12px; align-items: baseline; flex-wrap: wrap; }
.example pre, pre.block { white-space: pre-wrap; word-break: break-word; background: var(--bg);
       padding: 6px 8px; border-radius: 4px; margin: 4px 0; font-size: 12.5px; }
.label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.ctx { border-left: 3px solid var(--line); padding-left: 8px; margin: 6px 0; }
.ctx.gold { border-left-color: var(--good); }
.heat td { text-align: center; min-width: 28px; font-size: 12px; }
.heat th.col { writing-mode: vertical-rl; transform: rotate(180deg); white-space: nowrap;
       font-weight: 500; }
.heat td.diag { outline: 2px solid #8c959f; outline-offset: -2px; }
.pill { display: inline-block; padding: 0 6px; border-radius: 10px; font-size: 12px;
        border: 1px solid var(--line); }
.pill.ok { color: var(--good); border-color: var(--good); }
.pill.fail { color: var(--bad); border-color: var(--bad); }
details summary { cursor: pointer; color: var(--accent); }
svg text { font: 12px -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; fill: #1f2328; }
"""


def esc(value: Any) -> str:
    """Escape any value for HTML (non-strings shown as compact JSON)."""
    if isinstance(value, str):
        return html.escape(value)
    return html.escape(json.dumps(value, ensure_ascii=False, default=str))


def fmt(value: Any, digits: int = 3) -> str:
    """A number for display: floats rounded, None as an en dash."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return esc(value)


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{_CSS}</style></head>"
        f"<body>{body}</body></html>\n"
    )


def _is_unit(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1


def bar_chart(
    values: Mapping[str, float | None],
    *,
    title: str = "",
    lower_is_better: Sequence[str] = (),
) -> str:
    """Horizontal bars for 0-1 values, as inline SVG.

    Latencies and other values off the 0-1 scale are left to the table. Bars go from red to
    green as the value gets better, so a metric where lower is better is coloured the other
    way round.
    """
    rows = [
        (k, float(v))
        for k, v in values.items()
        if v is not None and _is_unit(v) and not k.endswith(_TIME_SUFFIXES)
    ]
    if not rows:
        return ""
    label_w, bar_w, row_h, pad = 260, 360, 22, 6
    height = len(rows) * row_h + pad * 2
    width = label_w + bar_w + 70
    parts = [
        f'<svg role="img" aria-label="{esc(title or "metrics")}" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">'
    ]
    for i, (name, value) in enumerate(rows):
        y = pad + i * row_h
        goodness = 1 - value if name in lower_is_better else value
        hue = int(120 * goodness)
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end">{esc(name)}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{bar_w}" height="{row_h - 6}" '
            'fill="#eaeef2" rx="2"/>'
            f'<rect x="{label_w}" y="{y + 3}" width="{bar_w * value:.1f}" height="{row_h - 6}" '
            f'fill="hsl({hue},55%,48%)" rx="2"><title>{esc(name)}: {value:.4f}</title></rect>'
            f'<text x="{label_w + bar_w + 6}" y="{y + 15}">{value:.3f}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]], *, cls: str = "") -> str:
    """A plain table; numbers right-aligned."""
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = []
    for row in rows:
        cells = []
        for cell in row:
            num = isinstance(cell, int | float) and not isinstance(cell, bool)
            cells.append(f'<td class="num">{fmt(cell)}</td>' if num else f"<td>{fmt(cell)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    klass = f' class="{cls}"' if cls else ""
    return f"<table{klass}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def confusion_heatmap(labels: Sequence[str], matrix: Sequence[Sequence[int]]) -> str:
    """A confusion matrix as a heat-map table (rows expected, columns predicted).

    With more than ``MAX_CONFUSION_LABELS`` labels, only the labels with the most errors
    (off-diagonal counts in their row and column) are shown.
    """
    n = len(labels)
    if n == 0 or len(matrix) != n or any(len(r) != n for r in matrix):
        return '<p class="bad">confusion matrix is malformed</p>'
    keep = list(range(n))
    note = ""
    if n > MAX_CONFUSION_LABELS:
        errors = [
            sum(matrix[i][j] for j in range(n) if j != i)
            + sum(matrix[j][i] for j in range(n) if j != i)
            for i in range(n)
        ]
        keep = sorted(sorted(range(n), key=lambda i: -errors[i])[:MAX_CONFUSION_LABELS])
        note = (
            f'<p class="muted">{n} labels; showing the {MAX_CONFUSION_LABELS} with the most '
            "errors (the full matrix is in the run's JSON).</p>"
        )
    head = "".join(f'<th class="col">{esc(labels[j])}</th>' for j in keep)
    rows = []
    for i in keep:
        total = sum(matrix[i]) or 1
        cells = []
        for j in keep:
            count = matrix[i][j]
            share = count / total
            colour = "37,99,235" if i == j else "207,34,46"
            style = f"background: rgba({colour},{share:.2f});" if count else ""
            if share > 0.55:
                style += "color:#fff;"
            diag = ' class="diag"' if i == j else ""
            title = f"{labels[i]} → {labels[j]}: {count}"
            cells.append(
                f'<td{diag} style="{style}" title="{esc(title)}">{count if count else ""}</td>'
            )
        rows.append(f"<tr><th>{esc(labels[i])}</th>{''.join(cells)}</tr>")
    return (
        f'{note}<table class="heat"><thead><tr><th>expected \\ predicted</th>{head}</tr>'
        f"</thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _extra_table(name: str, data: Any) -> str:
    if isinstance(data, Mapping) and "labels" in data and "matrix" in data:
        return f"<h3>{esc(data.get('title') or name)}</h3>" + confusion_heatmap(
            [str(x) for x in data["labels"]], data["matrix"]
        )
    if isinstance(data, Mapping) and "columns" in data and "rows" in data:
        if not data["rows"]:
            return f'<h3>{esc(data.get("title") or name)}</h3><p class="muted">none</p>'
        return f"<h3>{esc(data.get('title') or name)}</h3>" + table(data["columns"], data["rows"])
    if isinstance(data, Mapping) and data and all(isinstance(v, Mapping) for v in data.values()):
        # {row: {column: value}}: per-intent precision / recall and the like
        columns = sorted({c for v in data.values() for c in v})
        rows = [[k, *[v.get(c) for c in columns]] for k, v in data.items()]
        return f"<h3>{esc(name)}</h3>" + table([name, *columns], rows)
    return f'<h3>{esc(name)}</h3><pre class="block">{esc(data)}</pre>'


def _text(value: Any) -> str:
    if isinstance(value, str):
        return esc(value)
    if isinstance(value, Mapping) and isinstance(value.get("turns"), list):
        # a conversation: one line per turn, speaker first
        return esc(
            "\n".join(
                f"{t.get('speaker', '?')}: {t.get('text', '')}"
                for t in value["turns"]
                if isinstance(t, Mapping)
            )
        )
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return esc(", ".join(str(v) for v in value)) if value else "(none)"
    return esc(json.dumps(value, ensure_ascii=False, indent=1, default=str))


def _example(ex: Mapping[str, Any]) -> str:
    ok = ex.get("ok")
    pill = (
        ""
        if ok is None
        else f'<span class="pill {"ok" if ok else "fail"}">{"pass" if ok else "fail"}</span>'
    )
    metrics = ex.get("metrics") or {}
    metric_text = " · ".join(f"{esc(k)} {fmt(v)}" for k, v in metrics.items())
    parts = [
        '<div class="example"><header>'
        f"<strong>{esc(ex.get('id'))}</strong> {pill}"
        f"<span>score <strong>{fmt(ex.get('score'))}</strong></span>"
        f'<span class="muted">{metric_text}</span></header>',
        f'<div class="label">input</div><pre>{_text(ex.get("input"))}</pre>',
        f'<div class="label">expected</div><pre>{_text(ex.get("expected"))}</pre>',
        f'<div class="label">output</div><pre>{_text(ex.get("output"))}</pre>',
    ]
    meta = ex.get("meta") or {}
    if meta:
        parts.append(
            '<div class="muted">'
            + " · ".join(f"{esc(k)}: {fmt(v)}" for k, v in meta.items())
            + "</div>"
        )
    contexts = ex.get("contexts") or []
    if contexts:
        items = []
        for c in contexts:
            text = str(c.get("text", ""))
            if len(text) > MAX_CONTEXT_CHARS:
                text = text[:MAX_CONTEXT_CHARS] + " …"
            gold = " gold" if c.get("gold") else ""
            badge = ' <span class="pill ok">gold</span>' if c.get("gold") else ""
            score = (
                f' <span class="muted">score {fmt(c.get("score"))}</span>' if "score" in c else ""
            )
            items.append(
                f'<div class="ctx{gold}"><strong>{esc(c.get("title", ""))}</strong> '
                f'<span class="muted">[{esc(c.get("source_id", ""))}]</span>{badge}{score}'
                f"<pre>{esc(text)}</pre></div>"
            )
        parts.append(
            f"<details><summary>retrieved contexts ({len(contexts)})</summary>"
            + "".join(items)
            + "</details>"
        )
    parts.append("</div>")
    return "".join(parts)


def worst_examples(examples: Sequence[Mapping[str, Any]], n: int) -> list[Mapping[str, Any]]:
    """The ``n`` lowest-scoring examples (failed before passed at equal score)."""
    scored = [e for e in examples if e.get("score") is not None or e.get("ok") is not None]

    def key(e: Mapping[str, Any]) -> tuple[float, int, str]:
        score = e.get("score")
        if score is None:
            score = 1.0 if e.get("ok") else 0.0
        return (float(score), 1 if e.get("ok") else 0, str(e.get("id")))

    return sorted(scored, key=key)[:n]


def render_run(record: RunRecord, *, worst: int = WORST_EXAMPLES) -> str:
    """The HTML report of one run."""
    title = f"{record.suite} · {record.dataset.get('name', '')} · {record.run_id}"
    commit = (record.git_commit or "unknown")[:12] + (" (dirty)" if record.git_dirty else "")
    facts = [
        ("suite", record.suite),
        ("run", record.run_id),
        ("dataset", record.dataset.get("name", "")),
        ("examples", len(record.examples)),
        ("started", record.started_at),
        ("duration", f"{record.duration_s:.1f} s"),
        ("commit", commit),
        ("model tier", record.model_tier),
    ]
    body = [
        f'<h1>{esc(record.suite)} eval <span class="muted">· '
        f"{esc(record.dataset.get('name', ''))}</span></h1>",
        '<table class="facts"><tbody>'
        + "".join(f"<tr><td>{esc(k)}</td><td>{fmt(v)}</td></tr>" for k, v in facts)
        + "</tbody></table>",
    ]
    if record.config or record.dataset:
        body.append(
            "<details><summary>configuration</summary>"
            f'<pre class="block">{_text({"config": record.config, "dataset": record.dataset})}'
            "</pre></details>"
        )
    body.append("<h2>Metrics</h2>")
    body.append(
        table(
            ["metric", "value", "better"],
            [[k, v, record.direction(k)] for k, v in record.metrics.items()],
        )
    )
    lower = [k for k in record.metrics if record.direction(k) == "lower"]
    body.append(bar_chart(record.metrics, title=f"{record.suite} metrics", lower_is_better=lower))
    if record.notes:
        body.append("<ul>" + "".join(f"<li>{esc(n)}</li>" for n in record.notes) + "</ul>")
    if record.tables:
        body.append("<h2>Tables</h2>")
        body.extend(_extra_table(name, data) for name, data in record.tables.items())
    chosen = worst_examples(record.examples, worst)
    body.append(f'<h2>Worst examples <span class="muted">({len(chosen)} lowest scores)</span></h2>')
    body.extend(_example(e) for e in chosen)
    if not chosen:
        body.append("<p>none</p>")
    body.append(f'<h2>All examples <span class="muted">({len(record.examples)})</span></h2>')
    rows = [
        [e.get("id"), e.get("score"), e.get("ok"), short(e.get("input")), short(e.get("output"))]
        for e in record.examples
    ]
    body.append(
        "<details><summary>show</summary>"
        + table(["id", "score", "ok", "input", "output"], rows)
        + "</details>"
    )
    return _page(title, "".join(body))


def short(value: Any, n: int = 120) -> str:
    """One line for a table cell: a conversation shows its question, long text is cut."""
    if isinstance(value, Mapping) and isinstance(value.get("turns"), list) and value["turns"]:
        value = str(value["turns"][-1].get("text", ""))  # the question being answered
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def render_comparison(comp: Comparison) -> str:
    """The HTML page of a comparison of two runs (metrics, then examples that changed)."""
    a, b = comp.a, comp.b
    body = [
        f"<h1>{esc(a.suite)}: {esc(a.run_id)} → {esc(b.run_id)}</h1>",
        f'<p class="muted">{esc(a.dataset.get("name", ""))} · '
        f"{esc((a.git_commit or '?')[:10])} → {esc((b.git_commit or '?')[:10])}</p>",
    ]
    body.extend(f'<p class="bad">{esc(w)}</p>' for w in comp.warnings)
    body.append("<h2>Metrics</h2>")
    rows = []
    for m in comp.metrics:
        cls = {"improved": "good", "regressed": "bad"}.get(m.status, "muted")
        delta = "–" if m.delta is None else f"{m.delta:+.3f}"
        rows.append(
            f'<tr><td>{esc(m.name)}</td><td class="num">{fmt(m.a)}</td>'
            f'<td class="num">{fmt(m.b)}</td><td class="num {cls}">{delta}</td>'
            f'<td class="{cls}">{esc(m.status)}</td></tr>'
        )
    body.append(
        "<table><thead><tr><th>metric</th><th>A</th><th>B</th><th>Δ</th><th></th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )
    for status, label in (("regressed", "Regressed examples"), ("improved", "Improved examples")):
        changed = [e for e in comp.examples if e.status == status]
        body.append(f'<h2>{label} <span class="muted">({len(changed)})</span></h2>')
        if not changed:
            body.append("<p>none</p>")
            continue
        erows = [
            [
                e.id,
                e.score_a,
                e.score_b,
                e.delta,
                short(e.input),
                short(e.output_a),
                short(e.output_b),
            ]
            for e in changed
        ]
        body.append(
            table(["id", "score A", "score B", "Δ", "input", "output A", "output B"], erows)
        )
    return _page(f"compare {a.run_id} {b.run_id}", "".join(body))
