from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def session():
    """One real u2netp session for the whole run."""
    from alphacut import RuntimeOptions, new_session

    # rembg runs on ONNX Runtime, so exact comparisons with it use the same runtime.
    return new_session("u2netp", runtime=RuntimeOptions(backend="onnxruntime"))
