"""Loading models into sessions: the step above the registry and the graph rewrites, where a
name, the runtime options and the download policy become a ready session (an INT8 copy
for --fast, built first if needed)."""

from .loading import load_session, model_policy
from .pool import ModelPool, extra_models

__all__ = ["ModelPool", "extra_models", "load_session", "model_policy"]
