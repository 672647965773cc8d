"""How long a ``batchnb`` command takes to start, against a bare Python start in the same run.

Each command runs as its own process, as a user runs it, ``--runs`` times (medians printed), in
turns with the baseline so a busy moment bills every case alike::

    .venv/bin/python benchmarks/cli_startup.py [--runs 10] [--dir PARENT] [--smoke]

1. ``python -c pass`` (baseline: the interpreter alone);
2. ``python -c "import click, sqlalchemy.orm"`` (information: what any command that reads the
   database imports at least, the floor under ``status`` and ``list``);
3. ``batchnb --help``;
4. ``batchnb status`` on a workspace holding one small batch (no worker: it stays queued);
5. ``batchnb list`` on the same workspace.

The workspace is made (and its database migrated) before the clock starts, so what is timed is
the start: imports, settings, opening the database, the query and the output. The aim (issue 10)
is ``--help`` and ``status`` under 0.3 s on the development machine. ``--smoke`` runs each
command once (checks the script; its figures mean nothing). The exit code is 0 unless a command
fails.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

AIM_S = 0.3
AIMED = ("batchnb --help", "batchnb status")
SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "documents"


def commands() -> dict[str, list[str]]:
    """The timed command lines, by name; the console script beside this interpreter."""
    script = str(Path(sys.executable).with_name("batchnb"))
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        "click + sqlalchemy.orm": [sys.executable, "-c", "import click, sqlalchemy.orm"],
        "batchnb --help": [script, "--help"],
        "batchnb status": [script, "status"],
        "batchnb list": [script, "list"],
    }


def run_once(argv: list[str], env: dict[str, str]) -> float:
    """Seconds ``argv`` takes from start to exit; a failure stops the benchmark."""
    started = time.perf_counter()
    finished = subprocess.run(argv, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if finished.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({finished.returncode}):\n{finished.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="runs of each command (median)")
    parser.add_argument("--dir", type=Path, default=None, help="parent of the workspace")
    parser.add_argument(
        "--smoke", action="store_true", help="one run of each command: checks the script itself"
    )
    args = parser.parse_args()
    if args.smoke:
        args.runs = 1
    env = {name: value for name, value in os.environ.items() if not name.startswith("BATCHNB_")}
    with tempfile.TemporaryDirectory(prefix="batchnb-bench-", dir=args.dir) as home:
        env["BATCHNB_HOME"] = home
        script = commands()["batchnb status"][0]
        document = str(next(SAMPLE.glob("*.txt")))
        # One queued batch, so status and list have a row to show; no worker runs.
        run_once([script, "submit", document, "--prompt", "invoice number, total"], env)
        print(
            f"{args.runs} runs of each command; {os.cpu_count()} CPUs; "
            f"load average {os.getloadavg()[0]:.2f}; Python {sys.version.split()[0]}"
        )
        cases = commands()
        for argv in cases.values():  # warm up: the page cache, .pyc files
            run_once(argv, env)
        samples: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.runs):
            for name, argv in cases.items():
                samples[name].append(run_once(argv, env))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    baseline = medians["python -c pass"]
    print(f"{'command':<24}{'median s':>10}{'min s':>8}{'vs python':>11}{'aim':>18}")
    for name, median in medians.items():
        verdict = ""
        if name in AIMED:
            verdict = f"< {AIM_S} s: {'met' if median < AIM_S else 'not met'}"
        print(
            f"{name:<24}{median:>10.3f}{min(samples[name]):>8.3f}"
            f"{median / baseline:>10.1f}x{verdict:>18}"
        )
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
