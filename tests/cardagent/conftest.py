"""The PC/SC stack for the card agent's tests: one pcscd for the session (it has a fixed
socket), restarted by the tests that take the service away."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.auxil.pcsc import Pcscd, pcsc_missing


@pytest.fixture(scope="session")
def pcscd() -> Iterator[Pcscd]:
    """Fails, never skips, without pcscd and vpcd: CI must run these tests."""
    if reason := pcsc_missing():
        pytest.fail(reason)
    daemon = Pcscd()
    daemon.start()
    yield daemon
    daemon.close()


@pytest.fixture
def running_pcscd(pcscd: Pcscd) -> Pcscd:
    """The session's pcscd, running (a test before may have stopped it)."""
    pcscd.start()
    return pcscd
