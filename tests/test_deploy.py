"""The deployment files: ``.env.example``, ``deploy/`` (Compose, Dockerfile, systemd units, alerts).

Docker, systemd and Prometheus cannot run here, so each file is read the way they would read it
and every command it names is checked against the real click group (``make_context`` parses
the arguments as ``batchnb`` would), every path against the repository. The health alert
script runs for real against a workspace.
"""

from __future__ import annotations

import configparser
import importlib.util
import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from types import ModuleType

import click
import pytest
import yaml

from batchnb.cli import main
from batchnb.config.settings import SETTINGS_TABLE

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
SYSTEMD = DEPLOY / "systemd"
ALERTS = DEPLOY / "alerts"
SAMPLE = REPO / "samples" / "documents"
# The units' layout: the release in /opt/batchnb with its virtualenv in /opt/batchnb/.venv.
RELEASE = "/opt/batchnb/"
SETTING_NAMES = {setting.env_var for setting in SETTINGS_TABLE}


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def assert_batchnb_command(argv: list[str]) -> None:
    """``argv`` (``["batchnb", "app", "--host", ...]``) is a command batchnb would accept."""
    assert Path(argv[0]).name == "batchnb", argv
    command: click.Command = main
    words = argv[1:]
    while isinstance(command, click.Group) and words and not words[0].startswith("-"):
        name, words = words[0], words[1:]
        found = command.get_command(click.Context(command), name)
        assert found is not None, f"{shlex.join(argv)}: batchnb has no command {name!r}"
        command = found
    # Parses the options and arguments as batchnb would (a wrong one raises a UsageError),
    # without running the command.
    command.make_context(Path(argv[0]).name, list(words))


def _in_repository(path: str) -> Path:
    assert path.startswith(RELEASE), f"{path} is not under {RELEASE}"
    return REPO / path.removeprefix(RELEASE)


# .env.example


def test_env_example_is_generated_from_the_settings_table() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "env_example.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr  # names the command that writes it again


def test_env_example_lists_every_setting_with_its_default() -> None:
    generator = _load(REPO / "scripts" / "env_example.py")
    lines = (REPO / ".env.example").read_text(encoding="utf-8").splitlines()
    listed = dict(
        line.removeprefix("# ").split("=", 1) for line in lines if line.startswith("# BATCHNB_")
    )
    assert list(listed) == [setting.env_var for setting in SETTINGS_TABLE]
    for setting in SETTINGS_TABLE:
        assert listed[setting.env_var] == generator.env_value(setting.default), setting.env_var
    assert listed["BATCHNB_WORKER_THREADS"] == "2"
    assert listed["BATCHNB_RESULT_CACHE"] == "true"
    assert not [line for line in lines if line and not line.startswith("#")], "all commented out"


def test_env_example_values_are_read_back_as_the_defaults(tmp_path: Path) -> None:
    """Uncommented as they are, the lines give the defaults (nothing is mis-typed)."""
    from batchnb.config import load_settings

    lines = (REPO / ".env.example").read_text(encoding="utf-8").splitlines()
    environ = dict(
        line.removeprefix("# ").split("=", 1) for line in lines if line.startswith("# BATCHNB_")
    )
    environ["BATCHNB_HOME"] = str(tmp_path / "home")
    from_file = load_settings(environ)
    defaults = load_settings({"BATCHNB_HOME": str(tmp_path / "home")})
    assert from_file == defaults


# Compose and Dockerfile


def test_compose_names_postgres_redis_workers_and_the_app() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    services = compose["services"]
    assert {"postgres", "redis", "worker", "app"} <= set(services)
    assert services["worker"]["deploy"]["replicas"] >= 2
    for name in ("migrate", "worker", "app"):
        service = services[name]
        assert_batchnb_command(service["command"])
        build = service["build"]
        assert (DEPLOY / build["context"] / build["dockerfile"]).is_file()
        unknown = {k for k in service["environment"] if k.startswith("BATCHNB_")} - SETTING_NAMES
        assert unknown == set(), f"{name}: not batchnb settings"
        assert service["environment"]["BATCHNB_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert service["environment"]["BATCHNB_QUEUE_URL"].startswith("redis://")
    assert services["app"]["command"][1:] == [
        "app",
        "--host",
        "0.0.0.0",
        "--no-worker",
        "--no-browser",
    ]
    assert services["worker"]["depends_on"]["migrate"]["condition"] == (
        "service_completed_successfully"
    )


def _dockerfile_instructions() -> list[tuple[str, str]]:
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    text = re.sub(r"\\\n\s*", " ", text)  # continuation lines
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in text.splitlines()
        if line.strip() and not line.startswith("#")
    ]


def test_the_dockerfile_copies_existing_paths_and_runs_known_commands() -> None:
    instructions = _dockerfile_instructions()
    copies = [args.split() for kind, args in instructions if kind == "COPY"]
    assert copies
    for *sources, _target in copies:
        for source in sources:
            assert (REPO / source).exists(), f"COPY {source}: not in the repository"
    copied = {source.rstrip("/") for *sources, _ in copies for source in sources}
    wheel = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["hatch"]["build"]
    # What the wheel is built from must be in the image: the package and its force-included
    # and shared-data folders.
    needed = {"batchnb", "pyproject.toml", "README.md", "LICENSE"}
    needed |= set(wheel["targets"]["wheel"]["force-include"])
    needed |= {path.split("/")[0] for path in wheel["targets"]["wheel"]["shared-data"]}
    assert needed <= copied
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    runs = [args for kind, args in instructions if kind == "RUN"]
    installs = [re.search(r'"\.\[(?P<extras>[\w,]+)\]"', run) for run in runs]
    asked = {extra for found in installs if found for extra in found["extras"].split(",")}
    assert asked and asked <= set(extras)
    for run in runs:
        for step in re.split(r"&&", run):
            program = shlex.split(step)[0]
            assert program in {"apt-get", "rm", "python", "useradd", "mkdir", "chown"}, program
    cmd = [json.loads(args) for kind, args in instructions if kind == "CMD"]
    assert len(cmd) == 1
    assert_batchnb_command(cmd[0])


def test_what_the_dockerfile_copies_builds_the_wheel_with_apps_and_template(
    tmp_path: Path,
) -> None:
    """The image installs from its COPY lines alone: they must hold all the wheel needs."""
    context = tmp_path / "context"
    for kind, args in _dockerfile_instructions():
        if kind == "COPY":
            *sources, target = args.split()
            for source in sources:
                destination = context / (source if target.endswith("/") else target)
                if (REPO / source).is_dir():
                    shutil.copytree(
                        REPO / source, destination, ignore=shutil.ignore_patterns("__pycache__")
                    )
                else:
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy(REPO / source, destination)
    result = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation"),
            *("--wheel-dir", str(tmp_path / "wheel"), str(context)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    (wheel,) = (tmp_path / "wheel").glob("batchnb-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert any(
        name.endswith("share/jupyter/voila/templates/batchnb/index.html.j2") for name in names
    )
    assert "batchnb/_notebooks/upload.ipynb" in names
    assert any(name.startswith("batchnb/_widgets/") for name in names)


# systemd


def _unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(path, encoding="utf-8")
    return parser


UNITS = sorted(SYSTEMD.glob("*.service"))


@pytest.mark.parametrize("path", UNITS, ids=lambda path: path.name)
def test_each_systemd_service_parses_and_starts_an_existing_command(path: Path) -> None:
    unit = _unit(path)
    assert unit.has_section("Unit") and unit["Unit"]["Description"]
    service = unit["Service"]
    assert service["EnvironmentFile"] == "/etc/batchnb/batchnb.env"
    argv = shlex.split(service["ExecStart"])
    program = _in_repository(argv[0])
    assert program.parent == REPO / ".venv" / "bin"
    # The virtualenv of the layout is the one `make setup` makes: the program must be there.
    installed = Path(sys.executable).parent / program.name
    assert installed.exists(), f"{argv[0]}: {program.name} is not installed by batchnb"
    if program.name == "batchnb":
        assert_batchnb_command(argv)
    elif program.name == "papermill":
        assert _in_repository(argv[1]).is_file()
        parameters = {argv[i + 1] for i, word in enumerate(argv) if word == "-p"}
        notebook = json.loads(_in_repository(argv[1]).read_text(encoding="utf-8"))
        source = "".join(
            "".join(cell["source"])
            for cell in notebook["cells"]
            if "parameters" in cell["metadata"].get("tags", [])
        )
        assert all(re.search(rf"^{name} = ", source, re.M) for name in parameters), parameters
    else:
        assert program.name == "python"
        script = _in_repository(argv[1])
        assert script.is_file()
        options = [word for word in argv[2:] if word.startswith("--")]
        assert all(option in script.read_text() for option in options)
    if service.get("Type") == "oneshot":
        assert (path.with_suffix(".timer")).is_file(), "a oneshot unit is started by its timer"
    else:
        assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_the_units_cover_workers_the_app_scheduled_runs_and_health() -> None:
    starts = {path.name: shlex.split(_unit(path)["Service"]["ExecStart"]) for path in UNITS}
    assert starts["batchnb-worker@.service"][1:] == ["worker"]
    assert starts["batchnb-app.service"][1:3] == ["app", "--host"]
    assert "--no-worker" in starts["batchnb-app.service"]
    assert Path(starts["batchnb-scheduled-run.service"][1]).name == "scheduled_run.ipynb"
    worker = (SYSTEMD / "batchnb-worker@.service").read_text()
    assert "schedules" in worker, "the worker unit says that workers run the schedules"
    for timer in SYSTEMD.glob("*.timer"):
        unit = _unit(timer)
        assert unit["Timer"].get("OnCalendar") and unit["Install"]["WantedBy"] == "timers.target"
        assert timer.with_suffix(".service").is_file()


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is missing")
def test_systemd_analyze_verifies_the_units(tmp_path: Path) -> None:
    """systemd's own check, with the layout's /opt/batchnb pointed at this clone and venv."""
    for path in SYSTEMD.iterdir():
        text = path.read_text(encoding="utf-8")
        text = text.replace(f"{RELEASE}.venv/bin/", f"{Path(sys.executable).parent}/")
        text = text.replace(RELEASE, f"{REPO}/")
        name = path.name.replace("@.", "@1.")  # an instance of the worker template
        (tmp_path / name).write_text(text, encoding="utf-8")
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *sorted(str(p) for p in tmp_path.iterdir())],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


# Alerts


@pytest.fixture
def health_script() -> ModuleType:
    return _load(ALERTS / "batchnb_health.py")


def _check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ALERTS / "batchnb_health.py"), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _samples(text: str) -> dict[str, float]:
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


def test_the_alert_script_passes_a_healthy_workspace(tmp_path: Path) -> None:
    textfile = tmp_path / "metrics" / "batchnb.prom"
    result = _check("--textfile", str(textfile))
    assert result.returncode == 0, result.stderr
    samples = _samples(textfile.read_text())
    assert samples["batchnb_healthy"] == 1 and samples["batchnb_health_up"] == 1
    assert samples["batchnb_queue_depth_total"] == 0 and samples["batchnb_problems"] == 0


def test_the_alert_script_fails_on_an_unhealthy_report(tmp_path: Path) -> None:
    """Documents waiting and no worker: ``batchnb health`` reports it, the script exits 1."""
    submitted = subprocess.run(
        [
            sys.executable,
            "-m",
            "batchnb",
            "submit",
            str(next(SAMPLE.glob("*.txt"))),
            "--prompt",
            "invoice number, total",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert submitted.returncode == 0, submitted.stderr
    textfile = tmp_path / "batchnb.prom"
    result = _check("--textfile", str(textfile))
    assert result.returncode == 1, result.stderr
    assert "PROBLEM: 1 items are waiting and no consumer is running" in result.stderr
    samples = _samples(textfile.read_text())
    assert samples["batchnb_healthy"] == 0 and samples["batchnb_consumers"] == 0
    assert samples["batchnb_queue_depth_total"] == 1 and samples["batchnb_problems"] == 1


def test_the_alert_script_says_when_there_is_no_report(tmp_path: Path) -> None:
    textfile = tmp_path / "batchnb.prom"
    result = _check(
        "--command", f"{sys.executable} -c 'raise SystemExit(3)'", "--textfile", str(textfile)
    )
    assert result.returncode == 2
    assert "without a report" in result.stderr
    assert _samples(textfile.read_text())["batchnb_health_up"] == 0


def test_the_alert_rules_use_only_metrics_the_script_writes(health_script: ModuleType) -> None:
    report = {
        "healthy": False,
        "problems": ["x"],
        "consumers": [],
        "queue_depth": {"batch_processing": 2},
        "processing": 0,
        "oldest_pending_seconds": 12.0,
        "completed_last_hour": 1,
        "failed_last_hour": 1,
        "failure_rate": 0.5,
    }
    written = {name.split("{")[0] for name in _samples(health_script.metrics(report, 0.0))}
    rules = yaml.safe_load((ALERTS / "batchnb-rules.yml").read_text(encoding="utf-8"))
    alerts = [rule for group in rules["groups"] for rule in group["rules"]]
    assert {"BatchnbUnhealthy", "BatchnbNoWorkers"} <= {rule["alert"] for rule in alerts}
    for rule in alerts:
        used = set(re.findall(r"\bbatchnb_\w+", rule["expr"]))
        assert used and used <= written, rule["alert"]
        assert rule["annotations"]["summary"]
