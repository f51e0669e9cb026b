from __future__ import annotations

import os
import tempfile

import pytest


def pytest_configure(config: pytest.Config) -> None:
    # Saved optimised graphs go to a folder of this run's, not the user's ~/.cache; servers
    # and CLIs the tests start inherit it.
    os.environ["ALPHACUT_CACHE_DIR"] = tempfile.mkdtemp(prefix="alphacut-test-cache-")


@pytest.fixture(scope="session")
def session():
    """One real u2netp session for the whole run."""
    from alphacut import RuntimeOptions, new_session

    # rembg runs on ONNX Runtime, so exact comparisons with it use the same runtime.
    return new_session("u2netp", runtime=RuntimeOptions(backend="onnxruntime"))
