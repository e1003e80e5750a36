"""One full report, built once for the tests that read it (the default models, as `make report`).

It is built from an empty folder, so that the default degradation results
(`runs/degradation/results.json`) are missing, whatever the checkout holds, and the page shows
the runs shipped with the package."""

import os
from pathlib import Path

import pytest

from cnnarch.lecture.build import build_report


@pytest.fixture(scope="session")
def report(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("report")
    empty = tmp_path_factory.mktemp("cwd")
    here = os.getcwd()
    os.chdir(empty)
    try:
        return build_report(out)
    finally:
        os.chdir(here)


@pytest.fixture(scope="session")
def report_dir(report) -> Path:
    return report.out


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that reads the report built once per session is slow: it waits for that build
    (a test using the fixture needs no mark of its own)."""
    for item in items:
        if "report" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
