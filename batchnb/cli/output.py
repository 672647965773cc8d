"""Where a command writes results: a file the user names (checked first), or standard output.

``-o -`` writes to standard output: the export goes to a temporary file of the workspace and is
copied out once complete, so a failed export prints nothing half-written. A folder that does
not exist is refused rather than created: a mistyped path would otherwise hide the file.
"""

from __future__ import annotations

import shutil
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

STDOUT = Path("-")
BINARY_FORMATS = frozenset({"xlsx", "parquet"})


def check_output(output: Path | None, fmt: str | None, suffixes: dict[str, str]) -> None:
    """Refuse an output the export could not write as the user means it, before any work."""
    if output is None:
        return
    if output == STDOUT:
        if fmt is None:
            raise click.BadParameter(
                "say which format to print with --format (e.g. --format csv)",
                param_hint="--output -",
            )
        if fmt in BINARY_FORMATS and sys.stdout.isatty():
            raise click.BadParameter(
                f"{fmt} is a binary format: redirect it (> out.{fmt}) or use -o out.{fmt}",
                param_hint="--output -",
            )
        return
    if fmt is None and output.suffix.lower() not in suffixes:
        raise click.BadParameter(
            f"name the file after its format: {', '.join(sorted(suffixes))}, or give --format",
            param_hint="--output",
        )
    folder = output.expanduser().resolve().parent
    if not folder.is_dir():
        raise click.BadParameter(
            f"the folder {folder} does not exist: create it first, or check the path",
            param_hint="--output",
        )


@contextmanager
def export_target(output: Path | None, fmt: str | None, temp_dir: Path) -> Iterator[Path | None]:
    """The path to export to: ``output`` itself (``None``: a managed file of the workspace),
    or for ``-`` a temporary file printed after."""
    if output != STDOUT:
        yield output
        return
    temp_dir.mkdir(parents=True, exist_ok=True)
    target = temp_dir / f"stdout-{uuid.uuid4().hex}.{fmt}"
    try:
        yield target
        with target.open("rb") as written:
            shutil.copyfileobj(written, sys.stdout.buffer)
        sys.stdout.buffer.flush()
    finally:
        target.unlink(missing_ok=True)
