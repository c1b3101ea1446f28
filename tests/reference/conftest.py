"""Parity tests must not pass silently by skipping.

Every skip in this directory names what is missing. On CI (``CI=true``) the reference fixtures are
expected beside the checkout: when the reference directory exists there, any skip of a test in this
directory is reported as a failure, so a renamed file, a case the runner cannot replay or a broken
discovery cannot turn the parity suite into a row of "s".
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _reference_runner import reference_dir  # noqa: E402


def strict_parity() -> bool:
    """True on CI when the reference fixtures are present: then no parity test may skip."""
    return os.environ.get("CI") == "true" and reference_dir().is_dir()


def _reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # (path, line, "Skipped: reason")
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail") and strict_parity():
        report.outcome = "failed"
        report.longrepr = (
            f"parity test skipped on CI although the reference fixtures are present at {reference_dir()}: "
            f"{_reason(report)}"
        )
