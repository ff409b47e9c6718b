"""The chart suites split out of tests/integration/test_chart.py share its helm runner and renders."""

from tests.integration.test_chart import chart, default  # noqa: F401  (fixtures)
