"""``batchnb analytics``: volumes, success rate, processing times and failures of a period."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from batchnb.cli import tables
from batchnb.cli.group import domain_errors, main

if TYPE_CHECKING:
    import pandas as pd

    from batchnb.services.analytics import AnalyticsSummary

# The services (pandas, SQLAlchemy, openpyxl) are imported inside the command, so
# `batchnb --help` does not load them (tests/cli/test_startup.py).

_DATE_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]


def _echo_section(title: str, frame: pd.DataFrame) -> None:
    click.echo(f"\n{title}")
    if frame.empty:
        click.echo("  (none)")
        return
    click.echo(tables.render(frame))


def _echo_summary(summary: AnalyticsSummary) -> None:
    from batchnb.services.analytics_report import describe_period

    rate = summary.success_rate
    click.echo(f"analytics {describe_period(summary)}")
    click.echo(
        f"batches {summary.batches:,}  documents {summary.documents:,}  "
        f"completed {summary.completed:,}  failed {summary.failed:,}  "
        f"cancelled {summary.cancelled:,}  open {summary.open:,}"
    )
    click.echo(f"success rate {'-' if rate is None else f'{rate:.1%}'}  pages {summary.pages:,}")
    _echo_section(
        "Processing time (ms): queue items per queue, jobs per extractor and type", summary.timing
    )
    failures = summary.failures.assign(share=[f"{share:.1%}" for share in summary.failures.share])
    _echo_section("Failures by kind", failures[["kind", "documents", "share", "example"]])
    _echo_section("Volume per week (weeks start on Monday)", summary.volume_weekly)
    _echo_section("Volume per day (UTC)", summary.volume_daily)
    click.echo(
        f"\nQueue items per hour (trends; unlike the documents above, a retried document "
        f"counts once per attempt): {len(summary.trends)} row(s); see --json, --xlsx or --html",
    )


@main.command()
@click.option(
    "--from", "start", type=click.DateTime(_DATE_FORMATS), help="From this UTC date/time."
)
@click.option("--to", "end", type=click.DateTime(_DATE_FORMATS), help="Before this UTC date/time.")
@click.option(
    "--user", help="Only this user's documents (admins; everyone else sees only their own)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the figures and tables as JSON.")
@click.option(
    "--xlsx",
    "xlsx_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write an Excel report (a sheet per table, charts).",
)
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write a self-contained HTML report (tables, SVG charts).",
)
@domain_errors
def analytics(
    start: datetime | None,
    end: datetime | None,
    user: str | None,
    as_json: bool,
    xlsx_path: Path | None,
    html_path: Path | None,
) -> None:
    """Documents, success rate, pages, processing times, failures and volumes of a period.

    Documents count in the period they were created; you see your own documents, an admin
    sees everyone's (or one user's with --user).
    """
    from batchnb.services.analytics import analytics_summary
    from batchnb.services.analytics_report import write_report
    from batchnb.services.workspace import open_workspace

    start = None if start is None else start.replace(tzinfo=UTC)
    end = None if end is None else end.replace(tzinfo=UTC)
    if start is not None and end is not None and start >= end:
        raise click.BadParameter("--to must come after --from", param_hint="--to")
    summary = analytics_summary(start=start, end=end, user=user, workspace=open_workspace())
    for path in (xlsx_path, html_path):
        if path is not None:
            click.echo(f"wrote {write_report(summary, path)}", err=True)
    if as_json:
        click.echo(json.dumps(summary.as_dict(), default=str))
    else:
        _echo_summary(summary)
