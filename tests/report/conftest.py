"""One full report, built once for the tests that read it (the default models, as `make report`)."""

from pathlib import Path

import pytest

from cnnarch.report import build_report


@pytest.fixture(scope="session")
def report(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("report")
    missing = out / "no-degradation-results.json"
    return build_report(out, degradation_results=missing)


@pytest.fixture(scope="session")
def report_dir(report) -> Path:
    return report.out


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that reads the report built once per session is slow: it waits for that build
    (a test using the fixture needs no mark of its own)."""
    for item in items:
        if "report" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
