"""pytest plugin of ``tools/gpu_check``: one JSON line per test outcome, with
the backend the test ran on, so that the check can count per backend.

Loaded with ``-p gpu_check_plugin`` (``tools/`` on ``PYTHONPATH``); it writes
to the file named by ``XPNET_GPU_CHECK_RECORD`` and does nothing without it.
Under pytest-xdist the workers tag each test with its ``backend`` parameter
(``item.user_properties`` travel with the reports) and the controller writes,
a line at a time, so a run stopped at its time limit still leaves its counts,
each failure's traceback (``details``), the tests collected and those started
(``event`` lines): what was still running when the limit struck.
"""

from __future__ import annotations

import json
import os

import pytest

RECORD_VARIABLE = "XPNET_GPU_CHECK_RECORD"
BACKEND_PROPERTY = "xpnet_backend"
#: The most of a failure's report kept (its traceback, ``--tb`` as asked).
DETAILS_CHARS = 6000


def pytest_collection_modifyitems(items):
    for item in items:
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("backend") if callspec is not None else None
        item.user_properties.append((BACKEND_PROPERTY, backend if isinstance(backend, str) else None))


def pytest_configure(config):
    path = os.environ.get(RECORD_VARIABLE)
    if path and not hasattr(config, "workerinput"):  # the controller (or a run without xdist) writes
        config.pluginmanager.register(_Recorder(path), "gpu_check_recorder")


def outcome_of(report) -> str | None:
    """What one phase's report says about its test (None: nothing to record)."""
    xfail = hasattr(report, "wasxfail")
    if report.when == "call":
        if report.passed:
            return "xpassed" if xfail else "passed"
        if report.skipped:
            return "xfailed" if xfail else "skipped"
        return "failed"
    if report.failed:
        return "error"  # setup or teardown broke
    if report.skipped:
        return "skipped"  # a skip in setup (the backend fixture's, for one)
    return None


class _Recorder:
    def __init__(self, path: str) -> None:
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - open for the whole session
        self._collected = False

    def _write(self, line: dict) -> None:
        self._file.write(json.dumps(line) + "\n")
        self._file.flush()

    def _record_collected(self, ids) -> None:
        if ids and not self._collected:  # every xdist worker reports the same list
            self._collected = True
            self._write({"event": "collected", "ids": list(ids)})

    def pytest_collection_finish(self, session):  # without xdist (the controller collects nothing with it)
        self._record_collected([item.nodeid for item in session.items])

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node, ids):
        self._record_collected(ids)

    def pytest_runtest_logstart(self, nodeid, location):
        self._write({"event": "start", "nodeid": nodeid})

    def pytest_runtest_logreport(self, report):
        outcome = outcome_of(report)
        if outcome is None:
            return
        backend = dict(tuple(p) for p in report.user_properties).get(BACKEND_PROPERTY)
        message = ""
        if outcome in ("failed", "error"):
            crash = getattr(report.longrepr, "reprcrash", None)  # the exception's own line, when there is one
            lines = (crash.message if crash is not None else str(report.longrepr)).strip().splitlines()
            message = (lines[0] if crash is not None else lines[-1])[:300] if lines else ""
        elif outcome == "skipped" and isinstance(report.longrepr, tuple):
            message = str(report.longrepr[2])[:300]
        line = {"nodeid": report.nodeid, "backend": backend, "when": report.when, "outcome": outcome, "message": message}
        if outcome in ("failed", "error"):
            line["details"] = report.longreprtext[-DETAILS_CHARS:]
        self._write(line)

    def pytest_sessionfinish(self):
        self._file.close()
