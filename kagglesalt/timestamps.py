"""The two ways kagglesalt writes the time: in records, and in the names it makes."""

import time


def now() -> str:
    """For records (config.json, the ledger, ensemble records): 2026-11-27T16:11:12+0000."""
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def for_name() -> str:
    """For default run and submission names: 20261127-161112."""
    return time.strftime("%Y%m%d-%H%M%S")
