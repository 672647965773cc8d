"""The ``batchnb extractors`` command: which extractors this set-up can use, and broken plugins.

It reads the settings (environment and config file) and lists what a workspace with them sees,
without building an extractor: versions and needs are read from the extractor classes.
"""

from __future__ import annotations

import json
import warnings
from typing import TYPE_CHECKING

import click

from batchnb.cli.group import domain_errors, main
from batchnb.config import load_settings
from batchnb.errors import PluginWarning

if TYPE_CHECKING:
    from batchnb.extract import ExtractorInfo

_UNKNOWN = "-"


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@domain_errors
def extractors(as_json: bool) -> None:
    """List the installed extractors: version, where each comes from, what it needs.

    Plugins that failed to load are listed with their error.
    """
    # Imported here: the extractors (and their document parsers) are not needed for --help.
    from batchnb.extract import ExtractorPool

    with warnings.catch_warnings():
        # Each broken plugin is listed below with its error; the warning would repeat it.
        warnings.simplefilter("ignore", PluginWarning)
        rows = ExtractorPool(load_settings()).describe()
    if as_json:
        click.echo(json.dumps([row.as_dict() for row in rows], indent=1))
        return
    click.echo(_table([row for row in rows if not row.broken]))
    for row in rows:
        if row.broken:
            click.echo(f"BROKEN {row.name} ({row.origin}): {row.error}")


def _table(rows: list[ExtractorInfo]) -> str:
    """Aligned columns: name, version, from, needs (last, as long as it is)."""
    lines = [("name", "version", "from", "needs")] + [
        (row.name, row.version or _UNKNOWN, row.origin, row.needs or _UNKNOWN) for row in rows
    ]
    widths = [max(len(line[column]) for line in lines) for column in range(3)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line[:3], widths, strict=True))
        + "  "
        + line[3]
        for line in lines
    )
