"""Write ``.env.example``: every setting with its default and help, from the settings table.

    python scripts/env_example.py            # (re)write .env.example at the repository's root
    python scripts/env_example.py --check    # exit 1 when .env.example differs (tests run it)

Every line is commented out, so the file used as it is (systemd ``EnvironmentFile=``, Docker
``--env-file``) changes nothing: uncomment and edit the settings a deployment needs.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
TARGET = REPO / ".env.example"
COMMAND = "python scripts/env_example.py"

HEADER = f"""\
# batchnb settings: every BATCHNB_* variable with its default.
# Generated from batchnb/config/settings.py by `{COMMAND}`; do not edit by hand.
# Uncomment what you change. The same names, lower case and without BATCHNB_, are the keys of
# the config file (batchnb.toml in the workspace). Secrets belong in the environment or in a
# file only their service can read, never in the repository.
"""


def env_value(default: Any) -> str:
    """A default as it is written in an environment variable (lists comma-separated)."""
    if isinstance(default, bool):
        return "true" if default else "false"
    if isinstance(default, frozenset | set):
        return ",".join(sorted(default))
    if isinstance(default, tuple | list):
        return ",".join(str(item) for item in default)
    if isinstance(default, dict):
        return json.dumps(default) if default else ""
    return str(default)


def render() -> str:
    """The text of ``.env.example``."""
    sys.path.insert(0, str(REPO))
    from batchnb.config.settings import SETTINGS_TABLE

    blocks = [HEADER]
    for declared in SETTINGS_TABLE:
        value = env_value(declared.default)
        text = declared.help + (" Unset by default." if value == "" else "")
        comment = textwrap.fill(
            text, width=98, initial_indent="# ", subsequent_indent="# ", break_on_hyphens=False
        )
        blocks.append(f"{comment}\n# {declared.env_var}={value}\n")
    return "\n".join(blocks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="Only compare, exit 1 on change.")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else ""
        if current != text:
            print(f".env.example is out of date: run `{COMMAND}`", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
