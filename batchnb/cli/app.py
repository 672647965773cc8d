"""``batchnb app``: the notebooks as Voila apps, with a worker beside them."""

from __future__ import annotations

from pathlib import Path

import click

from batchnb.cli.group import domain_errors, main


@main.command()
@click.argument(
    "folder", required=False, type=click.Path(exists=True, file_okay=False, path_type=Path)
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=int, default=8866, show_default=True)
@click.option("--no-browser", is_flag=True, help="Do not open a browser.")
@click.option("--no-worker", is_flag=True, help="Start no worker (workers run elsewhere).")
@click.option(
    "--docs-url",
    help="The documentation site for the title bar's Help and the help panels "
    "(default: BATCHNB_DOCS_URL; none: Help opens the help app).",
)
@domain_errors
def app(
    folder: Path | None,
    host: str,
    port: int,
    no_browser: bool,
    no_worker: bool,
    docs_url: str | None,
) -> None:
    """Serve the apps (new batch, batches, analytics) with Voila, and a worker unless one runs;
    Ctrl-C stops both. FOLDER: other app notebooks to serve with the same template."""
    from batchnb.services.apps import serve_apps
    from batchnb.services.workspace import open_workspace

    code = serve_apps(
        open_workspace(),
        open_browser=not no_browser,
        log=lambda line: click.echo(line, err=True),
        folder=folder,
        host=host,
        port=port,
        worker=not no_worker,
        docs_url=docs_url,
    )
    raise SystemExit(code)
