"""The chart suites share one helm runner and the default render."""

from __future__ import annotations

import pytest
from tests.integration.chart.render import Chart, Rendered
from tests.support.ci import required
from tests.support.kubetools import ToolUnavailable, helm_binary


@pytest.fixture(scope="session")
def chart(tmp_path_factory: pytest.TempPathFactory) -> Chart:
    # CI must prove the chart; a developer offline may still run the other tiers.
    with required("helm", ToolUnavailable):
        helm = helm_binary()
    return Chart(helm, tmp_path_factory.mktemp("helm"))


@pytest.fixture(scope="session")
def default(chart: Chart) -> Rendered:
    return chart.render()
