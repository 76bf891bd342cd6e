"""The drift report for people: one self-contained HTML page with inline SVG charts.

No scripts, stylesheets or fonts are fetched: the file can be mailed, attached to a CI run
or opened offline. Per feature it shows the reference and current distributions overlaid
(an equal-width histogram for numeric features, grouped bars for categories), the
statistics, and the PSI buckets; warnings and alerts are highlighted.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Protocol

from seeknal_spark.monitoring.drift_results import DriftAlert, DriftThresholds, FeatureDrift

__all__ = ["ReportLike", "render_html"]


class ReportLike(Protocol):
    """What the page needs of a report (:class:`~seeknal_spark.monitoring.drift.DriftReport`).

    A protocol, so this module depends on the result types only and the report's
    ``to_html`` can call :func:`render_html` without an import cycle.
    """

    @property
    def features(self) -> tuple[FeatureDrift, ...]: ...

    @property
    def thresholds(self) -> DriftThresholds: ...

    @property
    def skipped(self) -> tuple[str, ...]: ...

    @property
    def alerts(self) -> list[DriftAlert]: ...

    @property
    def warnings(self) -> list[DriftAlert]: ...


_REF_COLOR = "#1f77b4"
_CUR_COLOR = "#ff7f0e"
_W, _H = 640, 220
_LEFT, _RIGHT, _TOP, _BOTTOM = 48, 12, 24, 56

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;margin:0 0 8px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 8px;
text-align:right}th{background:#f4f4f4}td.l,th.l{text-align:left}
section{border:1px solid #ddd;border-radius:6px;padding:12px 16px;margin:16px 0}
section.alert{border:2px solid #c62828;background:#fff5f5}
section.warn{border:2px solid #ef8f00;background:#fffaf0}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-size:.85em}
.ok{background:#2e7d32}.warn-b{background:#ef8f00}.alert-b{background:#c62828}
.no_data{background:#777}tr.alert td{background:#ffe3e3}tr.warn td{background:#fff1d6}
ul.alerts li{color:#c62828}ul.warnings li{color:#9a5b00}.muted{color:#777}
"""


def _fmt(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def _badge(status: str) -> str:
    css = {"warn": "warn-b", "alert": "alert-b"}.get(status, status)
    return f'<span class="badge {css}">{html.escape(status)}</span>'


def _fractions(counts: Sequence[int]) -> list[float]:
    total = sum(counts)
    return [c / total if total else 0.0 for c in counts]


def _svg_frame(y_max: float, body: list[str], x_labels: list[str]) -> str:
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" '
        f'viewBox="0 0 {_W} {_H}" role="img">',
        f'<line x1="{_LEFT}" y1="{_TOP + plot_h}" x2="{_LEFT + plot_w}" y2="{_TOP + plot_h}" '
        'stroke="#444"/>',
        f'<line x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" y2="{_TOP + plot_h}" stroke="#444"/>',
        f'<text x="{_LEFT - 4}" y="{_TOP + 4}" font-size="10" text-anchor="end">'
        f"{100 * y_max:.1f}%</text>",
        f'<text x="{_LEFT - 4}" y="{_TOP + plot_h}" font-size="10" text-anchor="end">0%</text>',
        f'<text x="{_LEFT}" y="13" font-size="11" fill="#555">share of non-missing values</text>',
        *body,
        *x_labels,
        f'<rect x="{_W - 190}" y="4" width="10" height="10" fill="{_REF_COLOR}" '
        'fill-opacity="0.55"/>',
        f'<text x="{_W - 176}" y="13" font-size="11">reference</text>',
        f'<rect x="{_W - 110}" y="4" width="10" height="10" fill="{_CUR_COLOR}" '
        'fill-opacity="0.55"/>',
        f'<text x="{_W - 96}" y="13" font-size="11">current</text>',
        "</svg>",
    ]
    return "\n".join(parts)


def _bar(x: float, width: float, frac: float, y_max: float, color: str, tip: str) -> str:
    plot_h = _H - _TOP - _BOTTOM
    height = plot_h * frac / y_max if y_max else 0.0
    return (
        f'<rect x="{x:.2f}" y="{_TOP + plot_h - height:.2f}" width="{max(width, 0.5):.2f}" '
        f'height="{height:.2f}" fill="{color}" fill-opacity="0.55">'
        f"<title>{html.escape(tip)}</title></rect>"
    )


def _numeric_svg(f: FeatureDrift) -> str:
    ref, cur = _fractions(f.ref_hist_counts), _fractions(f.cur_hist_counts)
    y_max = max([*ref, *cur, 1e-12])
    plot_w = _W - _LEFT - _RIGHT
    n = len(ref)
    step = plot_w / n
    body: list[str] = []
    for j in range(n):
        interval = f"[{f.hist_edges[j]:.4g}, {f.hist_edges[j + 1]:.4g}]"
        body.append(
            _bar(
                _LEFT + j * step,
                step - 1,
                ref[j],
                y_max,
                _REF_COLOR,
                f"reference {interval}: {100 * ref[j]:.2f}%",
            )
        )
        body.append(
            _bar(
                _LEFT + j * step,
                step - 1,
                cur[j],
                y_max,
                _CUR_COLOR,
                f"current {interval}: {100 * cur[j]:.2f}%",
            )
        )
    base = _H - _BOTTOM + 14
    labels = [
        f'<text x="{_LEFT + j * step:.2f}" y="{base}" font-size="10" text-anchor="middle">'
        f"{f.hist_edges[j]:.4g}</text>"
        for j in range(0, n + 1, max(1, n // 5))
    ]
    return _svg_frame(y_max, body, labels)


def _categorical_svg(f: FeatureDrift) -> str:
    ref, cur = _fractions(f.ref_bin_counts), _fractions(f.cur_bin_counts)
    y_max = max([*ref, *cur, 1e-12])
    plot_w = _W - _LEFT - _RIGHT
    n = max(len(ref), 1)
    step = plot_w / n
    bar = max(step * 0.4, 0.5)
    body: list[str] = []
    labels: list[str] = []
    for j, label in enumerate(f.bin_labels):
        x = _LEFT + j * step + step * 0.1
        body.append(
            _bar(x, bar, ref[j], y_max, _REF_COLOR, f"reference {label}: {100 * ref[j]:.2f}%")
        )
        body.append(
            _bar(x + bar, bar, cur[j], y_max, _CUR_COLOR, f"current {label}: {100 * cur[j]:.2f}%")
        )
        short = label if len(label) <= 14 else label[:13] + "\u2026"
        cx, cy = _LEFT + (j + 0.5) * step, _H - _BOTTOM + 12
        labels.append(
            f'<text x="{cx:.2f}" y="{cy}" font-size="10" text-anchor="end" '
            f'transform="rotate(-35 {cx:.2f} {cy})">{html.escape(short)}</text>'
        )
    return _svg_frame(y_max, body, labels)


def _feature_section(f: FeatureDrift, anchor: str) -> str:
    chart = (
        _numeric_svg(f)
        if f.kind == "numeric" and f.hist_edges
        else (_categorical_svg(f) if f.bin_labels else '<p class="muted">no values to plot</p>')
    )
    stats = (
        "<table><tr><th>kind</th><th>PSI</th><th>KS</th><th>reference rows</th>"
        "<th>current rows</th><th>reference null rate</th><th>current null rate</th>"
        "<th>null rate change</th></tr>"
        f"<tr><td>{f.kind}</td><td>{_fmt(f.psi)}</td><td>{_fmt(f.ks)}</td>"
        f"<td>{f.ref_rows}</td><td>{f.cur_rows}</td><td>{_pct(f.ref_null_rate)}</td>"
        f"<td>{_pct(f.cur_null_rate)}</td><td>{_pct(f.null_rate_change)}</td></tr></table>"
    )
    messages = "".join(
        f'<li class="{a.level}">{a.level.upper()}: {html.escape(a.message)}</li>' for a in f.alerts
    )
    alerts = f'<ul class="alerts">{messages}</ul>' if messages else ""
    rows = "".join(
        f'<tr><td class="l">{html.escape(label)}</td><td>{r}</td><td>{c}</td>'
        f"<td>{_pct(rf)}</td><td>{_pct(cf)}</td></tr>"
        for label, r, c, rf, cf in zip(
            f.bin_labels,
            f.ref_bin_counts,
            f.cur_bin_counts,
            _fractions(f.ref_bin_counts),
            _fractions(f.cur_bin_counts),
            strict=True,
        )
    )
    buckets = (
        '<details><summary>PSI buckets</summary><table><tr><th class="l">bucket</th>'
        "<th>reference</th><th>current</th><th>reference %</th><th>current %</th></tr>"
        f"{rows}</table></details>"
    )
    css = f.status if f.status in ("warn", "alert") else ""
    return (
        f'<section id="{anchor}" class="{css}"><h2>{html.escape(f.feature)} '
        f"{_badge(f.status)}</h2>{alerts}{stats}{chart}{buckets}</section>"
    )


def render_html(report: ReportLike, *, title: str = "Feature drift report") -> str:
    """The whole report as one HTML document (a string).

    Examples
    --------
    >>> from seeknal_spark.monitoring.drift import DriftReport, DriftThresholds
    >>> page = render_html(DriftReport((), DriftThresholds()), title="empty")
    >>> page.startswith("<!DOCTYPE html>"), "0 features" in page
    (True, True)
    """
    t = report.thresholds
    summary_rows = []
    sections = []
    for i, f in enumerate(report.features):
        anchor = f"feature-{i}"
        summary_rows.append(
            f'<tr class="{f.status}"><td class="l"><a href="#{anchor}">'
            f'{html.escape(f.feature)}</a></td><td class="l">{f.kind}</td>'
            f"<td>{_fmt(f.psi)}</td><td>{_fmt(f.ks)}</td><td>{_pct(f.ref_null_rate)}</td>"
            f"<td>{_pct(f.cur_null_rate)}</td><td>{_pct(f.null_rate_change)}</td>"
            f"<td>{_badge(f.status)}</td></tr>"
        )
        sections.append(_feature_section(f, anchor))
    alert_items = "".join(f"<li>{html.escape(a.message)}</li>" for a in report.alerts)
    warn_items = "".join(f"<li>{html.escape(a.message)}</li>" for a in report.warnings)
    skipped = (
        f'<p class="muted">Not compared (unsupported types): '
        f"{html.escape(', '.join(report.skipped))}</p>"
        if report.skipped
        else ""
    )
    created = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{_CSS}</style></head><body>
<h1>{html.escape(title)}</h1>
<p class="muted">Generated {created}. {len(report.features)} features,
{len(report.alerts)} alerts, {len(report.warnings)} warnings. Thresholds (warn / alert):
PSI {_fmt(t.psi_warn)} / {_fmt(t.psi_alert)}, KS {_fmt(t.ks_warn)} / {_fmt(t.ks_alert)},
null-rate change {_fmt(t.null_rate_warn)} / {_fmt(t.null_rate_alert)}.
PSI and KS compare non-missing values; missing values count in the null rates.</p>
{f'<h2>Alerts</h2><ul class="alerts">{alert_items}</ul>' if alert_items else ""}
{f'<h2>Warnings</h2><ul class="warnings">{warn_items}</ul>' if warn_items else ""}
<table><tr><th class="l">feature</th><th class="l">kind</th><th>PSI</th><th>KS</th>
<th>reference null rate</th><th>current null rate</th><th>null rate change</th>
<th>status</th></tr>
{"".join(summary_rows)}</table>
{skipped}
{"".join(sections)}
</body></html>
"""
