"""Fixtures shared by the executor tests."""

from __future__ import annotations

import pytest

from hpt_cli.executors import LocalExecutor


@pytest.fixture
def executor():
    """A started one-slot LocalExecutor, cancelled at the end of the test."""
    ex = LocalExecutor(1)
    ex.start()
    yield ex
    ex.shutdown(cancel=True)
