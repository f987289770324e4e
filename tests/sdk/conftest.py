"""Shared fixtures: the simulator's base URL comes from COVER_SIM_URL (started by the test script)."""

import os

import pytest

KEY = "sk-sim-sdk-test-key"
ANSWER = "This is a simulated answer to: Hello there"
WEATHER_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string", "description": "City name"}},
    "required": ["city"],
}


@pytest.fixture(scope="session")
def sim_url() -> str:
    url = os.environ.get("COVER_SIM_URL")
    if not url:
        pytest.fail("COVER_SIM_URL must point at a running `cover simulate` (e.g. http://127.0.0.1:8089)")
    return url.rstrip("/")


def fault(kind: str) -> dict:
    """Extra headers asking the simulator for a fault on one request."""
    return {"x-sim-fault": kind}
