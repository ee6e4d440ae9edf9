"""Shared test fixtures.

``network_guard`` (autouse): tests never reach the network. Any connection or
name lookup for a non-loopback host is refused and recorded, and a test that
tried one fails at teardown even if the code under test swallowed the error
(tldextract, for one, silently falls back to its bundled suffix list when its
download fails). A test that means to provoke an attempt can inspect and clear
``network_guard.violations``.
"""

import pytest
from _loopback import NetworkGuard


@pytest.fixture(autouse=True)
def network_guard():
    guard = NetworkGuard().install()
    try:
        yield guard
    finally:
        guard.uninstall()
    if guard.violations:
        pytest.fail("test tried to reach the network: " + "; ".join(guard.violations), pytrace=False)
