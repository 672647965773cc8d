"""Analytics reports: an Excel workbook with native charts, or one self-contained HTML page.

The HTML page needs nothing beside it: styles are inline, charts are SVG drawn here, there is
no JavaScript and nothing is fetched. Every text that comes from the data (file names, error
messages, document types, user names) is escaped; in the workbook, text that a spreadsheet
would run as a formula is neutralised like in exports.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from openpyxl import Workbook
from openpyxl.chart import BarChart, LineChart, Reference
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from batchnb.errors import ExportError
from batchnb.formats.cells import xlsx_cell
from batchnb.services.analytics import AnalyticsSummary

SHEETS = {
    "overview": "Overview",
    "timing": "Timing",
    "failures": "Failures",
    "volume_daily": "Volume per day",
    "volume_weekly": "Volume per week",
    "trends": "Queue items per hour",
}
"""Table name -> sheet title (and HTML section heading)."""

COLORS = {"created": "#6b7b8c", "completed": "#2e8b57", "failed": "#c0392b", "documents": "#c0392b"}
_WIDTH, _HEIGHT = 720, 260
_LEFT, _RIGHT, _TOP, _BOTTOM = 56, 16, 28, 56


def write_report(summary: AnalyticsSummary, path: str | Path) -> Path:
    """Write ``summary`` to ``path``: ``.xlsx`` (tables + charts) or ``.html``/``.htm``.

    Raises
    ------
    ExportError
        The suffix names neither format.
    """
    target = Path(path).expanduser()
    suffix = target.suffix.lower()
    if suffix not in (".xlsx", ".html", ".htm"):
        raise ExportError(
            f"cannot write an analytics report to {target.name!r}: name a .xlsx or .html file"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".xlsx":
        _write_xlsx(summary, target)
    else:
        target.write_text(report_html(summary), encoding="utf-8")
    return target


def describe_period(summary: AnalyticsSummary) -> str:
    """ "2024-03-01 to 2024-04-01 (UTC), user alice" and the like."""
    start = "the beginning" if summary.start is None else f"{summary.start:%Y-%m-%d %H:%M}"
    end = "now" if summary.end is None else f"{summary.end:%Y-%m-%d %H:%M}"
    who = "all users" if summary.user is None else f"user {summary.user}"
    return f"from {start} to {end} (UTC, end excluded), {who}"


def hourly_throughput(trends: pd.DataFrame) -> pd.DataFrame:
    """Trends summed over queues: hour, created, completed, failed (what the charts show)."""
    columns = ["created", "completed", "failed"]
    if trends.empty:
        return pd.DataFrame(columns=["hour", *columns])
    return trends.groupby("hour", sort=True)[columns].sum().reset_index()


# --------------------------------------------------------------------------------------------
# Excel


def _plain(value: Any) -> Any:
    """A cell value: no NaN, no timezone (Excel has none; every time here is UTC)."""
    if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.tz_convert("UTC").tz_localize(None).to_pydatetime()
    return xlsx_cell(value)


def _write_table(sheet: Worksheet, frame: pd.DataFrame, column: int = 1) -> None:
    for offset, name in enumerate(frame.columns):
        sheet.cell(row=1, column=column + offset, value=str(name)).font = Font(bold=True)
        sheet.column_dimensions[get_column_letter(column + offset)].width = 16
    for row_number, row in enumerate(frame.itertuples(index=False), start=2):
        for offset, value in enumerate(row):
            sheet.cell(row=row_number, column=column + offset, value=_plain(value))


def _bar_chart(
    sheet: Worksheet, title: str, rows: int, columns: tuple[int, int], horizontal: bool = False
) -> BarChart:
    chart = BarChart()
    chart.type = "bar" if horizontal else "col"
    chart.title = title
    chart.height, chart.width = 8, 18
    data = Reference(sheet, min_col=columns[0], max_col=columns[1], min_row=1, max_row=rows + 1)
    chart.add_data(data, titles_from_data=True)
    chart.set_categories(Reference(sheet, min_col=1, min_row=2, max_row=rows + 1))
    return chart


def _write_xlsx(summary: AnalyticsSummary, path: Path) -> None:
    workbook = Workbook()
    workbook.remove(workbook.active)  # type: ignore[arg-type]
    for name, frame in summary.tables().items():
        sheet = workbook.create_sheet(SHEETS[name])
        _write_table(sheet, frame)
        rows = len(frame)
        if name == "overview":
            sheet.cell(row=rows + 3, column=1, value=xlsx_cell(describe_period(summary)))
        elif name == "volume_daily" and rows:
            # created, completed, failed: columns B to D.
            sheet.add_chart(_bar_chart(sheet, "Documents per day", rows, (2, 4)), "J2")
        elif name == "failures" and rows:
            sheet.add_chart(
                _bar_chart(sheet, "Failed documents by kind", rows, (2, 2), horizontal=True), "H2"
            )
        elif name == "trends" and rows:
            hourly = hourly_throughput(frame)
            _write_table(sheet, hourly.rename(columns={"hour": "hour (all queues)"}), column=12)
            chart = LineChart()
            chart.title = "Queue items per hour (all queues)"
            chart.height, chart.width = 8, 18
            chart.add_data(
                Reference(sheet, min_col=13, max_col=15, min_row=1, max_row=len(hourly) + 1),
                titles_from_data=True,
            )
            chart.set_categories(Reference(sheet, min_col=12, min_row=2, max_row=len(hourly) + 1))
            sheet.add_chart(chart, "Q2")
    workbook.save(path)


# --------------------------------------------------------------------------------------------
# HTML

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; max-width: 1100px; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.5rem 0; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: right; }
th { background: #f2f2f2; } td:first-child, th:first-child { text-align: left; }
svg { display: block; margin: 0.5rem 0; } .note { color: #666; font-size: 0.85rem; }
"""


def _number(value: Any) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".")
    return f"{value:,}" if isinstance(value, int) else str(value)


def _percent(value: Any) -> str:
    return "-" if value is None or pd.isna(value) else f"{value:.1%}"


def _table_html(name: str, frame: pd.DataFrame) -> str:
    if frame.empty:
        return "<p class='note'>nothing in this period</p>"
    formatters: dict[str, Callable[[Any], str]] = {
        column: _number for column in frame.columns if frame[column].dtype.kind in "if"
    }
    if name == "overview":
        shown = [
            _percent(value) if metric == "success_rate" else _number(value)
            for metric, value in zip(frame["metric"], frame["value"], strict=True)
        ]
        frame = frame.assign(value=shown)
    if name == "failures":
        formatters["share"] = _percent
    if name == "trends":
        formatters["hour"] = lambda value: f"{value:%Y-%m-%d %H:%M}"
    text = frame.to_html(
        index=False,
        escape=True,
        na_rep="-",
        border=0,
        formatters=formatters,
    )
    return str(text)


def _scale(maximum: float) -> float:
    """A round axis maximum at or above ``maximum``."""
    if maximum <= 0:
        return 1.0
    step = 10 ** (len(str(int(maximum))) - 1)
    return float(-(-maximum // step) * step)


def _svg(title: str, body: list[str], legend: Sequence[str]) -> str:
    keys = "".join(
        f"<rect x='{_LEFT + 110 * i}' y='{_HEIGHT - 14}' width='10' height='10' "
        f"fill='{COLORS.get(name, '#555')}'/><text x='{_LEFT + 110 * i + 14}' "
        f"y='{_HEIGHT - 5}' font-size='11'>{html.escape(name)}</text>"
        for i, name in enumerate(legend)
    )
    label = html.escape(title)
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{_WIDTH}' height='{_HEIGHT}' "
        f"viewBox='0 0 {_WIDTH} {_HEIGHT}' role='img' aria-label='{label}'><title>{label}"
        f"</title><text x='{_LEFT}' y='16' font-size='13' font-weight='bold'>{label}</text>"
        + "".join(body)
        + keys
        + "</svg>"
    )


def _axes(maximum: float, categories: Sequence[str], x_of: Callable[[int], float]) -> list[str]:
    bottom, width = _HEIGHT - _BOTTOM, _WIDTH - _LEFT - _RIGHT
    parts = [f"<line x1='{_LEFT}' y1='{bottom}' x2='{_LEFT + width}' y2='{bottom}' stroke='#999'/>"]
    for fraction in (0.0, 0.5, 1.0):
        y = bottom - fraction * (bottom - _TOP)
        parts.append(
            f"<text x='{_LEFT - 6}' y='{y + 4:.1f}' font-size='10' text-anchor='end'>"
            f"{_number(maximum * fraction)}</text>"
            f"<line x1='{_LEFT}' y1='{y:.1f}' x2='{_LEFT + width}' y2='{y:.1f}' stroke='#eee'/>"
        )
    every = max(1, -(-len(categories) // 12))  # at most 12 labels
    slanted = len(categories) > 6  # long labels would overlap side by side
    for index in range(0, len(categories), every):
        x, y = x_of(index), bottom + 14
        turn = f" transform='rotate(-25 {x:.1f} {y})'" if slanted else ""
        anchor = "end" if slanted else "middle"
        parts.append(
            f"<text x='{x:.1f}' y='{y}' font-size='10' text-anchor='{anchor}'{turn}>"
            f"{html.escape(categories[index])}</text>"
        )
    return parts


def bar_chart_svg(
    title: str, categories: Sequence[str], series: Mapping[str, Sequence[float]]
) -> str:
    """Grouped vertical bars, one group per category, as an SVG element."""
    maximum = _scale(max((max(values, default=0) for values in series.values()), default=0))
    bottom, width = _HEIGHT - _BOTTOM, _WIDTH - _LEFT - _RIGHT
    slot = width / max(len(categories), 1)
    bar = slot * 0.8 / max(len(series), 1)
    body = _axes(maximum, categories, lambda index: _LEFT + slot * (index + 0.5))
    for number, (name, values) in enumerate(series.items()):
        for index, value in enumerate(values):
            height = (bottom - _TOP) * float(value) / maximum
            x = _LEFT + slot * index + slot * 0.1 + bar * number
            body.append(
                f"<rect x='{x:.1f}' y='{bottom - height:.1f}' width='{bar:.1f}' "
                f"height='{height:.1f}' fill='{COLORS.get(name, '#555')}'><title>"
                f"{html.escape(f'{categories[index]} {name}: {_number(value)}')}</title></rect>"
            )
    return _svg(title, body, list(series))


def line_chart_svg(
    title: str, categories: Sequence[str], series: Mapping[str, Sequence[float]]
) -> str:
    """One polyline per series over the categories, as an SVG element."""
    maximum = _scale(max((max(values, default=0) for values in series.values()), default=0))
    bottom, width = _HEIGHT - _BOTTOM, _WIDTH - _LEFT - _RIGHT
    step = width / max(len(categories) - 1, 1)
    body = _axes(maximum, categories, lambda index: _LEFT + step * index)
    for name, values in series.items():
        points = " ".join(
            f"{_LEFT + step * index:.1f},{bottom - (bottom - _TOP) * float(v) / maximum:.1f}"
            for index, v in enumerate(values)
        )
        color = COLORS.get(name, "#555")
        body.append(f"<polyline points='{points}' fill='none' stroke-width='2' stroke='{color}'/>")
        # Dots show single points and which hours had data (hours without any are left out).
        body.extend(
            f"<circle cx='{point.split(',')[0]}' cy='{point.split(',')[1]}' r='2.5' "
            f"fill='{color}'/>"
            for point in points.split()
        )
    return _svg(title, body, list(series))


def _charts(name: str, frame: pd.DataFrame) -> str:
    if frame.empty:
        return ""
    if name == "volume_daily":
        days = [f"{day:%Y-%m-%d}" for day in frame["day"]]
        series = {key: frame[key].tolist() for key in ("created", "completed", "failed")}
        return bar_chart_svg("Documents per day", days, series)
    if name == "failures":
        kinds = [str(kind) for kind in frame["kind"]]
        return bar_chart_svg(
            "Failed documents by kind", kinds, {"documents": frame["documents"].tolist()}
        )
    if name == "trends":
        hourly = hourly_throughput(frame)
        hours = [f"{hour:%m-%d %H:00}" for hour in hourly["hour"]]
        series = {key: hourly[key].tolist() for key in ("created", "completed", "failed")}
        return line_chart_svg("Queue items per hour (all queues)", hours, series)
    return ""


def report_html(summary: AnalyticsSummary) -> str:
    """The report as one HTML page (tables and SVG charts, no script, no external resource)."""
    parts = [
        "<!doctype html>",
        "<html lang='en'><head><meta charset='utf-8'><title>batchnb analytics</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>batchnb analytics</h1>",
        f"<p>{html.escape(describe_period(summary))}</p>",
    ]
    for name, frame in summary.tables().items():
        parts.append(f"<h2>{html.escape(SHEETS[name])}</h2>")
        parts.append(_charts(name, frame))
        parts.append(_table_html(name, frame))
    parts.append("</body></html>")
    return "\n".join(part for part in parts if part)
