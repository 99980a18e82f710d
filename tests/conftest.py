"""Shared pytest wiring: each fixture family lives in its own module under tests/fixtures."""

pytest_plugins = [
    "tests.fixtures.postgres",
    "tests.fixtures.pgbouncer",
    "tests.fixtures.radicale",
    "tests.fixtures.redis",
    "tests.fixtures.s3",
    "tests.fixtures.simulator",
    "tests.fixtures.twilio_fake",
    "tests.fixtures.stack",
]
