"""Shared pytest wiring: each fixture family lives in its own module under tests/fixtures."""

import pytest

pytest_plugins = [
    "tests.fixtures.docker_engine",
    "tests.fixtures.postgres",
    "tests.fixtures.pgbouncer",
    "tests.fixtures.radicale",
    "tests.fixtures.redis",
    "tests.fixtures.s3",
    "tests.fixtures.simulator",
    "tests.fixtures.twilio_fake",
    "tests.fixtures.stack",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Calls over the real phone stack start worker processes whose start-up and bursts take the
    machine's CPU: `make test` runs them after the rest, one at a time (marker `alone`)."""
    for item in items:
        if "phone_stack" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.alone)
