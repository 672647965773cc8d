"""Named intake plans: how many files, and how many bytes, one batch may take.

The plan in use comes from the ``plan`` setting (``BATCHNB_PLAN``); ``local`` is the default
and is generous, because on one's own machine the only real limit is the disk.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from batchnb.errors import ConfigurationError

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB


@dataclass(frozen=True)
class Plan:
    """Limits applied to one intake (one batch).

    Attributes
    ----------
    name:
        The preset's name, quoted in refusal messages.
    max_files:
        Files accepted per batch; files beyond it are refused in the order given.
    max_file_bytes:
        Largest single file accepted.
    max_batch_bytes:
        Largest total of accepted files.
    """

    name: str
    max_files: int
    max_file_bytes: int
    max_batch_bytes: int

    def __post_init__(self) -> None:
        for field in ("max_files", "max_file_bytes", "max_batch_bytes"):
            if getattr(self, field) < 0:
                raise ConfigurationError(
                    f"plan {self.name!r}: {field} must be 0 or more, got {getattr(self, field)}"
                )


PLANS: Mapping[str, Plan] = MappingProxyType(
    {
        plan.name: plan
        for plan in (
            # Single-document use only: batches are not part of this plan.
            Plan("starter", max_files=0, max_file_bytes=10 * MIB, max_batch_bytes=0),
            Plan("plus", max_files=50, max_file_bytes=25 * MIB, max_batch_bytes=1 * GIB),
            Plan("growth", max_files=200, max_file_bytes=100 * MIB, max_batch_bytes=10 * GIB),
            Plan("local", max_files=10_000, max_file_bytes=512 * MIB, max_batch_bytes=50 * GIB),
        )
    }
)

#: The plan used when none is configured.
DEFAULT_PLAN = "local"


def get_plan(name: str) -> Plan:
    """The preset called ``name`` (case and surrounding spaces ignored).

    Raises
    ------
    ConfigurationError
        When no preset has that name; the message lists the valid ones.
    """
    plan = PLANS.get(name.strip().lower())
    if plan is None:
        valid = ", ".join(PLANS)
        raise ConfigurationError(
            f"unknown plan {name!r}; set BATCHNB_PLAN (or plan=) to one of: {valid}"
        )
    return plan
