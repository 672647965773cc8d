"""``batchnb app``'s parts that run without a browser: where the apps and the template are, the
command line Voila gets, and the settings the title bar shows."""

from __future__ import annotations

import filecmp
import json
from pathlib import Path

import nbformat
import pytest

from batchnb.errors import MissingDependencyError
from batchnb.services import apps
from batchnb.services.workspace import Workspace

REPO = Path(__file__).resolve().parents[2]


def test_every_app_the_title_bar_links_is_a_notebook_of_the_apps_folder() -> None:
    folder = apps.apps_dir()
    assert folder == REPO / "notebooks"  # an editable install reads the repository's
    for app in [*apps.APPS, {"file": "help.ipynb"}]:
        notebook = nbformat.read(folder / app["file"], as_version=4)
        assert notebook.cells[0].cell_type == "markdown"
        assert notebook.cells[0].source.startswith(f"# {app.get('title', 'Help')}")


def test_the_installed_template_is_the_one_in_the_repository() -> None:
    """Voila reads the copy pip installed; `make setup` installs again when templates/ changes."""
    installed = apps.template_dir()
    source = REPO / "templates" / "batchnb"
    names = sorted(path.name for path in source.iterdir())
    _same, mismatch, errors = filecmp.cmpfiles(source, installed, names, shallow=False)
    assert (mismatch, errors) == ([], []), f"stale template in {installed}: run make setup"


def test_voila_reads_this_runs_settings_first_and_the_templates_defaults_last(
    tmp_path: Path,
) -> None:
    run_config = apps.write_run_config(tmp_path / "app", user="ada", docs_url="https://d/")
    written = json.loads((run_config / "voila.json").read_text())
    settings = written["VoilaConfiguration"]["resources"]["batchnb"]
    assert settings == {"apps": list(apps.APPS), "user": "ada", "docs_url": "https://d/"}

    args = apps.voila_args(REPO / "notebooks", run_config, host="0.0.0.0", port=9999)
    paths = [arg.split("=", 1)[1] for arg in args if arg.startswith("--Voila.config_file_paths=")]
    assert paths[0] == str(run_config)
    assert paths[-1] == str(apps.template_dir())
    assert {"--Voila.ip=0.0.0.0", "--port=9999", "--no-browser"} <= set(args)
    defaults = json.loads((apps.template_dir() / "voila.json").read_text())
    assert defaults["VoilaConfiguration"]["template"] == apps.TEMPLATE
    assert defaults["VoilaConfiguration"]["strip_sources"] is True
    # The dropzone sends 8 MiB chunks: Voila's websocket takes messages well above that.
    assert defaults["Voila"]["tornado_settings"]["websocket_max_message_size"] >= 16 * 2**20


def test_without_voila_the_app_says_which_extra_installs_it(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_find_spec = apps.importlib.util.find_spec
    monkeypatch.setattr(
        apps.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "voila" else real_find_spec(name, *a),
    )
    with pytest.raises(MissingDependencyError, match=r"pip install 'batchnb\[apps\]'"):
        apps.start_apps(workspace)
