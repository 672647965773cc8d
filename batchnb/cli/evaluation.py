"""The ``eval`` command: score extraction on a folder of labelled documents."""

from __future__ import annotations

from pathlib import Path

import click

from batchnb.cli.group import domain_errors, main

# batchnb.evaluation (pandas, the services) is imported inside the command, so `batchnb --help`
# does not load it (tests/cli/test_startup.py).

DEFAULT_EXAMPLES = 3  # batchnb.evaluation.errors.DEFAULT_EXAMPLES, not imported for startup


def _part(_context: click.Context, _param: click.Parameter, value: str | None) -> object:
    if value is None:
        return None
    from batchnb.evaluation.dataset import EvaluationError, parse_part

    try:
        return parse_part(value)
    except EvaluationError as error:
        raise click.BadParameter(str(error)) from None


@main.command(name="eval")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--use",
    type=click.Choice(["prompt", "schema"]),
    default="prompt",
    show_default=True,
    help="Run each dataset with its task's prompt or its schema (tasks.json).",
)
@click.option(
    "--strategy",
    type=click.Choice(["global", "auto"]),
    default="global",
    show_default=True,
    help="auto: classify each document and extract it with its type's template (the task's "
    "prompt for the dataset's declared type), and report the classifier's accuracy per type "
    "with a confusion table.",
)
@click.option("--extractor", default="offline", show_default=True)
@click.option("--dataset", "datasets", multiple=True, help="Only this dataset (repeatable).")
@click.option("--limit", type=int, default=None, help="At most N documents per dataset.")
@click.option(
    "--part",
    callback=_part,
    metavar="K/N",
    default=None,
    help="Only the K-th of N parts of the documents, split by a stable hash of the file name "
    "(e.g. develop on 1/2, measure on 2/2).",
)
@click.option(
    "--errors",
    "show_errors",
    is_flag=True,
    help="Show, per field, examples of expected vs got with the document and page.",
)
@click.option(
    "--examples",
    type=click.IntRange(min=1),
    default=DEFAULT_EXAMPLES,
    show_default=True,
    help="Examples per field for --errors and the HTML report.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the JSON summary.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write an HTML report (with the error examples).",
)
@domain_errors
def eval_command(
    folder: Path,
    use: str,
    strategy: str,
    extractor: str,
    datasets: tuple[str, ...],
    limit: int | None,
    part: tuple[int, int] | None,
    show_errors: bool,
    examples: int,
    as_json: bool,
    csv_path: Path | None,
    html_path: Path | None,
) -> None:
    """Score extraction on an evaluation FOLDER (documents/, ground_truth/, tasks.json).

    Runs in a throw-away workspace whose queue processes documents inline: no server needed.
    """
    from batchnb.evaluation import evaluate

    report = evaluate(
        folder,
        use="schema" if use == "schema" else "prompt",
        extractor=extractor,
        limit=limit,
        datasets=list(datasets) or None,
        strategy=strategy,
        part=part,
    )
    shown = examples if show_errors else 0
    click.echo(report.to_json(examples=shown) if as_json else report.to_text(examples=shown))
    if csv_path is not None:
        click.echo(f"wrote {report.to_csv(csv_path)}", err=True)
    if html_path is not None:
        click.echo(f"wrote {report.to_html(html_path, examples=examples)}", err=True)
