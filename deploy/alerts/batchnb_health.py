"""Check batchnb's health for cron, systemd timers and Prometheus.

Runs ``batchnb health --json`` with the environment it is given (the same ``BATCHNB_*`` settings
as the workers), prints each problem on standard error and exits:

- 0 when the report is healthy;
- 1 when it is unhealthy (the problems are printed, one a line);
- 2 when no report could be had (batchnb failed or printed no JSON).

With ``--textfile PATH`` it also writes the report as Prometheus metrics (written to a temporary
file and renamed, so the node exporter's textfile collector never reads half a file); the alert
rules in ``batchnb-rules.yml`` beside this script are built on them. Only the standard library
is used, so it runs with the Python of batchnb's virtualenv as it is.

    python deploy/alerts/batchnb_health.py --textfile /var/lib/prometheus/node-exporter/batchnb.prom
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HEALTHY, UNHEALTHY, NO_REPORT = 0, 1, 2


def read_report(command: list[str], timeout: float) -> dict[str, Any]:
    """Run ``command`` (``batchnb health --json``) and return its JSON report.

    ``batchnb health`` exits 1 when unhealthy and still prints the report, so the exit code
    alone says nothing here: the JSON does.
    """
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RuntimeError(f"{shlex.join(command)} did not run: {exc}") from None
    try:
        report = json.loads(result.stdout)
    except ValueError:
        report = None
    if not isinstance(report, dict) or "healthy" not in report:
        reason = (result.stderr.strip() or result.stdout.strip() or "no output").splitlines()[-1]
        raise RuntimeError(
            f"{shlex.join(command)} exited {result.returncode} without a report: {reason}"
        )
    return report


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def metrics(report: dict[str, Any] | None, now: float) -> str:
    """The report as Prometheus text exposition (``None``: batchnb gave no report)."""
    lines = [
        "# HELP batchnb_health_up 1 when batchnb health gave a report, 0 when it failed.",
        "# TYPE batchnb_health_up gauge",
        f"batchnb_health_up {0 if report is None else 1}",
        "# HELP batchnb_health_check_timestamp_seconds When this check ran.",
        "# TYPE batchnb_health_check_timestamp_seconds gauge",
        f"batchnb_health_check_timestamp_seconds {now:.0f}",
    ]
    if report is None:
        return "\n".join(lines) + "\n"

    def gauge(name: str, help_text: str, value: Any, labels: str = "") -> None:
        if value is None:
            return  # no value (e.g. no finished item this hour): no sample, not a zero
        if f"# TYPE batchnb_{name} gauge" not in lines:
            lines.extend([f"# HELP batchnb_{name} {help_text}", f"# TYPE batchnb_{name} gauge"])
        lines.append(f"batchnb_{name}{labels} {float(value):g}")

    gauge("healthy", "1 when batchnb health found no problem.", int(bool(report["healthy"])))
    gauge("problems", "Problems batchnb health found.", len(report.get("problems") or []))
    gauge("consumers", "Live worker processes (consumers).", len(report.get("consumers") or []))
    depth = report.get("queue_depth") or {}
    for queue, count in sorted(depth.items()):
        gauge("queue_depth", "Items waiting, per queue.", count, f'{{queue="{_escape(queue)}"}}')
    gauge("queue_depth_total", "Items waiting on every queue.", sum(depth.values()))
    gauge("processing", "Items being processed now.", report.get("processing"))
    gauge(
        "oldest_pending_seconds",
        "How long the oldest ready item has waited.",
        report.get("oldest_pending_seconds"),
    )
    gauge(
        "completed_last_hour",
        "Items completed in the last hour.",
        report.get("completed_last_hour"),
    )
    gauge("failed_last_hour", "Items failed in the last hour.", report.get("failed_last_hour"))
    gauge(
        "failure_rate",
        "Share of the last hour's finished items that failed.",
        report.get("failure_rate"),
    )
    return "\n".join(lines) + "\n"


def write_textfile(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (a temporary file in the same folder, renamed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.chmod(temporary, 0o644)  # the node exporter runs as another user
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--command",
        default=f"{shlex.quote(sys.executable)} -m batchnb health --json",
        help="The health command (default: this Python's batchnb health --json).",
    )
    parser.add_argument("--textfile", type=Path, help="Write Prometheus metrics to this file.")
    parser.add_argument("--timeout", type=float, default=60.0, help="Seconds the check may take.")
    args = parser.parse_args(argv)
    report: dict[str, Any] | None
    try:
        report = read_report(shlex.split(args.command), args.timeout)
    except RuntimeError as exc:
        print(f"batchnb health: {exc}", file=sys.stderr)
        report = None
    if args.textfile is not None:
        write_textfile(args.textfile, metrics(report, time.time()))
    if report is None:
        return NO_REPORT
    if report["healthy"]:
        print("batchnb health: healthy", file=sys.stderr)
        return HEALTHY
    for problem in report.get("problems") or ["unhealthy"]:
        print(f"batchnb health: PROBLEM: {problem}", file=sys.stderr)
    return UNHEALTHY


if __name__ == "__main__":
    sys.exit(main())
