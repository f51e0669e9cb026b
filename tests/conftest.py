from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def session():
    """One real u2netp session for the whole run."""
    from alphacut import new_session

    return new_session("u2netp")
