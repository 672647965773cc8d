"""``AnalyticsDashboard``: metric cards, interactive charts and reports of a period, in a notebook.

The kernel asks :func:`batchnb.analytics_summary` (cached per period and user) and turns the
summary into chart data (:mod:`batchnb.ui.charts`); ``widgets/analytics.js`` draws the cards
and SVG charts, shows each value on hover, and sends the user's choices back.

The charts are our own SVG: no chart library to install or keep in step with JupyterLab's
widget manager, nothing fetched (it works offline, in JupyterLab and Voila alike), colours from
JupyterLab's theme variables, and every bar and slice is an element a browser test can find
and hover.

Synced state the browser sets: ``start``, ``end`` (ISO dates, ``end`` included; empty: open)
and ``user`` (admins only; empty: everyone). Messages from the browser (``content["type"]``):

``refresh``
    Read the summary again (it may be up to the cache's time to live old).
``report`` ``{format}``
    ``"xlsx"`` or ``"html"``: answered by ``report {name, mime}`` with the file's bytes in
    ``buffers[0]``, which the browser offers as a download (Voila too), or by ``error``.
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from batchnb.errors import BatchnbError
from batchnb.services.access import is_admin
from batchnb.services.analytics import AnalyticsSummary, analytics_summary
from batchnb.services.analytics_report import describe_period, write_report
from batchnb.services.listing import list_batches
from batchnb.services.workspace import Workspace, default_workspace
from batchnb.ui.assets import asset
from batchnb.ui.background import in_background
from batchnb.ui.charts import dashboard_data
from batchnb.ui.help import Helpful, help_html

__all__ = ["DEFAULT_DAYS", "REPORT_FORMATS", "AnalyticsDashboard"]

DEFAULT_DAYS = 30
"""The period shown first: the last 30 days, today included."""
REPORT_FORMATS = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "html": "text/html",
}
_KNOWN_USERS = 500
"""Admins pick a user among the owners of this many most recent batches (or type any name)."""


def _iso(day: date | None) -> str:
    return "" if day is None else day.isoformat()


def _parse_day(text: str, what: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{what} {text!r} is not a date: write it as YYYY-MM-DD") from None


class AnalyticsDashboard(Helpful, anywidget.AnyWidget):
    """Cards, charts and reports of the documents created in a period.

    Parameters
    ----------
    start, end:
        First and last day shown (UTC, both included); default: the last
        :data:`DEFAULT_DAYS` days. ``None`` on one side leaves it open once the dashboard
        exists (``dashboard.start = ""``).
    user:
        Admins: one user's figures (empty: everyone's). Anyone else sees their own.
    workspace:
        Default: :func:`batchnb.default_workspace`.

    Examples
    --------
    >>> dashboard = AnalyticsDashboard()  # doctest: +SKIP
    >>> dashboard  # doctest: +SKIP
    >>> dashboard.summary.success_rate  # doctest: +SKIP
    """

    help_topic = "analytics"

    _esm = asset("analytics.js")
    _css = asset("analytics.css").read_text(encoding="utf-8") + asset("help.css").read_text(
        encoding="utf-8"
    )

    start = traitlets.Unicode("").tag(sync=True)
    end = traitlets.Unicode("").tag(sync=True)
    user = traitlets.Unicode("").tag(sync=True)
    #: Who is looking, whether they are an admin, and the users an admin may pick.
    actor = traitlets.Unicode("").tag(sync=True)
    admin = traitlets.Bool(False).tag(sync=True)
    users = traitlets.List(traitlets.Unicode()).tag(sync=True)
    #: What the charts draw (:func:`batchnb.ui.charts.dashboard_data`) and the period's words.
    data = traitlets.Dict().tag(sync=True)
    period = traitlets.Unicode("").tag(sync=True)
    busy = traitlets.Bool(False).tag(sync=True)
    error = traitlets.Unicode("").tag(sync=True)
    help_body = traitlets.Unicode("").tag(sync=True)

    def __init__(
        self,
        *,
        start: date | None = None,
        end: date | None = None,
        user: str = "",
        workspace: Workspace | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._workspace = workspace or default_workspace()
        today = datetime.now(UTC).date()
        last = end or today
        first = start or last - timedelta(days=DEFAULT_DAYS - 1)
        self.actor = self._workspace.settings.user
        self.admin = is_admin(self._workspace.settings, self.actor)
        self.help_body = help_html(self.help_topic)
        self._summary: AnalyticsSummary | None = None
        self._generation = 0
        self._scheduled = False
        self._quiet = False
        with self.hold_trait_notifications():
            self.start, self.end, self.user = _iso(first), _iso(last), user
        if self.admin:
            self.users = self._known_users()
        self.observe(self._filters_changed, names=["start", "end", "user"])
        self.on_msg(self._handle_message)
        self.refresh()

    def __repr__(self) -> str:
        who = self.user or ("everyone" if self.admin else self.actor)
        shown = f"{self.start or 'the beginning'} to {self.end or 'now'}"
        return f"AnalyticsDashboard({shown}, {who})"

    # -- public API -------------------------------------------------------------------------

    @property
    def summary(self) -> AnalyticsSummary | None:
        """The summary shown now (``None`` until the first one is read, or after an error)."""
        return self._summary

    def set_period(self, start: date | None, end: date | None) -> None:
        """Show ``start`` to ``end`` (both included; ``None``: open); recomputes once."""
        self._quiet = True
        try:
            self.start, self.end = _iso(start), _iso(end)
        finally:
            self._quiet = False
        self.refresh()

    def refresh(self) -> None:
        """Read the summary of the current filters and redraw (off the kernel's event loop)."""
        self._scheduled = False
        self._generation += 1
        generation = self._generation
        try:
            first = _parse_day(self.start, "the first day")
            last = _parse_day(self.end, "the last day")
        except ValueError as error:
            self.error = str(error)
            return
        if first is not None and last is not None and last < first:
            self.error = f"the last day ({last}) is before the first ({first})"
            return
        user = self.user.strip() or None
        self.busy = True

        def work() -> AnalyticsSummary:
            return analytics_summary(
                start=None if first is None else datetime.combine(first, time(), UTC),
                end=None if last is None else datetime.combine(last + timedelta(1), time(), UTC),
                user=user,
                workspace=self._workspace,
            )

        def done(summary: AnalyticsSummary) -> None:
            if generation != self._generation:
                return  # the filters changed meanwhile: a newer summary is on its way
            self._summary = summary
            self.data = dashboard_data(summary, first, last)
            self.period = describe_period(summary)
            self.error = ""
            self.busy = False

        def failed(error: Exception) -> None:
            if generation != self._generation:
                return
            if not isinstance(error, BatchnbError):
                raise error
            self._summary = None
            self.data = {}
            self.error = str(error)
            self.busy = False

        in_background(work, done, failed)

    def report(self, fmt: str = "xlsx") -> tuple[str, bytes]:
        """The report of the summary shown, as (file name, bytes): ``"xlsx"`` or ``"html"``.

        Written by :func:`batchnb.services.analytics_report.write_report`.
        """
        if fmt not in REPORT_FORMATS:
            raise ValueError(f"no report format {fmt!r}; choose xlsx or html")
        if self._summary is None:
            raise ValueError("no summary to report yet" + (f": {self.error}" if self.error else ""))
        # Named after the summary's own period: the filters may have moved on meanwhile.
        first = "start" if self._summary.start is None else f"{self._summary.start:%Y-%m-%d}"
        end = self._summary.end
        last = "now" if end is None else f"{end - timedelta(microseconds=1):%Y-%m-%d}"
        name = f"batchnb-analytics-{first}-to-{last}.{fmt}"
        with tempfile.TemporaryDirectory(prefix="batchnb-report-") as folder:
            path = write_report(self._summary, Path(folder) / name)
            return name, path.read_bytes()

    # -- internals --------------------------------------------------------------------------

    def _known_users(self) -> list[str]:
        """Owners of the most recent batches, for an admin's user picker."""
        try:
            page = list_batches(workspace=self._workspace, page_size=_KNOWN_USERS)
        except BatchnbError:
            return []
        return sorted({row.owner for row in page.rows})

    def _filters_changed(self, _change: dict[str, Any]) -> None:
        """Several filters change in one message: recompute once, after all of them."""
        if self._quiet:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.refresh()
            return
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self.refresh)

    def _handle_message(self, _widget: Any, content: dict[str, Any], _buffers: list[Any]) -> None:
        kind = content.get("type")
        if kind == "refresh":
            self.refresh()
        elif kind == "report":
            fmt = str(content.get("format", ""))
            try:
                name, data = self.report(fmt)
            except (ValueError, BatchnbError) as error:
                self.send({"type": "error", "message": str(error)})
                return
            self.send({"type": "report", "name": name, "mime": REPORT_FORMATS[fmt]}, [data])
