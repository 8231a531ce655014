"""pytest configuration: fixtures live in tests/fixtures/ by area.

With ``LMREAD_NO_SKIP=1`` (set by ``make test``, so in CI) a skipped test or module is a failure:
every backend is installed there, and nothing may be skipped for lack of one.
"""

from __future__ import annotations

import os

import pytest

pytest_plugins = [
    "tests.fixtures.core",
    "tests.fixtures.llamacpp",
    "tests.fixtures.hf",
    "tests.fixtures.openai",
    "tests.fixtures.llama_server",
]

STRICT = os.environ.get("LMREAD_NO_SKIP") == "1"


def _fail_skip(report: pytest.TestReport | pytest.CollectReport) -> None:
    if STRICT and report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped, but LMREAD_NO_SKIP=1 forbids skips: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> object:
    outcome = yield
    _fail_skip(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> object:
    outcome = yield
    _fail_skip(outcome.get_result())
