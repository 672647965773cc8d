"""The ``batchnb`` click group and what its commands share.

Domain errors (:class:`batchnb.errors.BatchnbError`) become clean one-line messages here and
nowhere else.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from batchnb.errors import BatchnbError

F = TypeVar("F", bound=Callable[..., Any])


def domain_errors(func: F) -> F:
    """Turn a batchnb error into a one-line message naming this command's options."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except BatchnbError as exc:
            context = click.get_current_context(silent=True)
            message = str(exc) if context is None else in_option_words(str(exc), context.command)
            raise click.ClickException(message) from None

    return wrapper  # type: ignore[return-value]


def in_option_words(message: str, command: click.Command) -> str:
    """``message`` with the Python parameters it names written as the command's options.

    The services word their errors for Python (``array_field=``, ``strategy='auto'``); on the
    command line the same advice reads ``--array-field``, ``--strategy auto``. Parameters the
    command has no option for are left as they are.
    """
    for param in command.params:
        if not isinstance(param, click.Option):
            continue
        flag = max(param.opts, key=len)
        if not flag.startswith("--"):
            continue
        for name in {param.name, flag[2:].replace("-", "_")} - {None}:
            message = re.sub(rf"\b{name}=(['\"])([^'\"]*)\1", rf"{flag} \2", message)
            message = re.sub(rf"\b{name}=", flag, message)
    return message


def read_json(path: Path | None) -> Any:
    if path is None:
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise click.BadParameter(f"{path}: not readable JSON ({exc})") from None


@click.group()
@click.option("-v", "--verbose", count=True, help="More logging (-vv for debug).")
def main(verbose: int) -> None:
    """Batch document extraction: submit files with a prompt, get typed results back."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Huey's own lines (task ids, executions) help only when debugging the transport.
    logging.getLogger("huey").setLevel(logging.DEBUG if verbose >= 2 else logging.WARNING)


def batch_options(func: F) -> F:
    options = [
        click.argument("paths", nargs=-1, required=True),
        click.option("--prompt", "-p", help="What to extract, in plain words."),
        click.option(
            "--schema",
            "schema_file",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help='The fields as a JSON file (JSON Schema or {"fields": [...]}), instead of '
            "a prompt.",
        ),
        click.option(
            "--strategy",
            type=click.Choice(["global", "auto"]),
            default="global",
            show_default=True,
            help="auto: recognise each document's type and use that type's prompt.",
        ),
        click.option(
            "--rules",
            "rules_file",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="Validation rules as a JSON list; problems become flags on the results.",
        ),
        click.option("--name", help="Batch name (default: from the file names)."),
        click.option("--extractor", default="offline", show_default=True),
        click.option("--priority", type=int, default=0, show_default=True),
        click.option(
            "--no-cache",
            is_flag=True,
            help="Extract every document again, even where a stored result of the same bytes, "
            "schema and extractor version exists (e.g. while developing an extractor).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func
