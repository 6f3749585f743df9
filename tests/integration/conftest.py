"""Fixtures of the integration tests (see rig.py)."""

from tests.integration.rig import rig, rig_factory  # noqa: F401
