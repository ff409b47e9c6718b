"""The chart suites share one helm runner and the default render."""

from __future__ import annotations

import os

import pytest
from tests.integration.chart.render import Chart, Rendered
from tests.support.kubetools import ToolUnavailable, helm_binary


@pytest.fixture(scope="session")
def chart(tmp_path_factory: pytest.TempPathFactory) -> Chart:
    try:
        helm = helm_binary()
    except ToolUnavailable as exc:
        # CI must prove the chart; a developer offline may still run the other tiers.
        if os.environ.get("CI"):
            pytest.fail(str(exc))
        pytest.skip(f"no helm: {exc}")
    return Chart(helm, tmp_path_factory.mktemp("helm"))


@pytest.fixture(scope="session")
def default(chart: Chart) -> Rendered:
    return chart.render()
