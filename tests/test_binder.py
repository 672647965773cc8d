"""binder/: repo2docker cannot run here, so its two scripts run in a scratch copy of the
repository, as repo2docker would run them: ``postBuild`` once in the repository, then ``start``
with the server's command.

The scratch virtualenv sees this project's installed packages through a ``.pth`` file, so
``pip install -e ".[apps]"`` finds every dependency installed and downloads nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sysconfig
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LEFT_OUT = shutil.ignore_patterns(
    ".venv", ".git", "test-artifacts", "*_cache", "__pycache__", "*.egg-info"
)
HEALTH_POLL = """
import json, subprocess, sys, time
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    report = subprocess.run(["batchnb", "health", "--json"], capture_output=True, text=True)
    if report.stdout and json.loads(report.stdout)["consumers"]:
        print("worker seen")
        sys.exit(0)
    time.sleep(0.5)  # polling interval while the worker starts
sys.exit("no worker within 60 s")
"""


@pytest.fixture(scope="module")
def binder_home(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A scratch repository copy, a virtualenv that sees this project's packages, a HOME."""
    scratch = tmp_path_factory.mktemp("binder")
    repo = scratch / "repo"
    shutil.copytree(REPO, repo, ignore=LEFT_OUT)
    environment = scratch / "venv"
    venv.create(environment, with_pip=False)
    site = Path(
        sysconfig.get_path("purelib", vars={"base": str(environment), "platbase": str(environment)})
    )
    (site / "project-packages.pth").write_text(sysconfig.get_path("purelib") + "\n")
    home = scratch / "home"
    home.mkdir()
    return {"repo": repo, "venv": environment, "home": home}


def _env(paths: dict[str, Path]) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("BATCHNB_", "JUPYTER", "PIP_", "VIRTUAL_ENV", "PYTHON"))
        or name.startswith("BATCHNB_TEST_")
    }
    env.update(
        HOME=str(paths["home"]),
        PATH=f"{paths['venv'] / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        VIRTUAL_ENV=str(paths["venv"]),
        # Build the editable wheel with the hatchling installed here, not a downloaded one.
        PIP_NO_BUILD_ISOLATION="1",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
    )
    return env


def test_post_build_installs_the_apps_and_start_runs_a_worker_beside_the_server(
    binder_home: dict[str, Path],
) -> None:
    env = _env(binder_home)
    python = binder_home["venv"] / "bin" / "python"

    built = subprocess.run(
        ["bash", "binder/postBuild"],
        cwd=binder_home["repo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stdout + built.stderr

    # batchnb is installed from the scratch copy, with its Voila template where Voila looks.
    where = subprocess.run(
        [python, "-c", "import batchnb; print(batchnb.__file__)"],
        cwd=binder_home["home"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(where.stdout.strip()).is_relative_to(binder_home["repo"])
    template = binder_home["venv"] / "share" / "jupyter" / "voila" / "templates" / "batchnb"
    assert (template / "index.html.j2").is_file()
    # Jupyter Server's Voila gets the apps' defaults.
    config = json.loads(
        (binder_home["home"] / ".jupyter" / "jupyter_server_config.json").read_text()
    )
    assert config["VoilaConfiguration"]["template"] == "batchnb"
    assert config["VoilaConfiguration"]["strip_sources"] is True
    # The workspace exists and is migrated.
    assert list((binder_home["home"] / ".batchnb").glob("*.db"))

    # start: a worker comes up beside the command it hands over to.
    started = subprocess.Popen(
        ["bash", "binder/start", str(python), "-c", HEALTH_POLL],
        cwd=binder_home["repo"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = started.communicate(timeout=120)
    finally:
        os.killpg(started.pid, signal.SIGTERM)  # the worker too: it is in start's group
    assert started.returncode == 0, output
    assert "worker seen" in output
    assert (binder_home["home"] / "batchnb-worker.log").exists()
