"""The HTTP service: `create_app(ServerSettings(...))` builds it; `alphacut serve` runs it."""

from .app import create_app
from .settings import ServerSettings, load_api_keys

__all__ = ["ServerSettings", "create_app", "load_api_keys"]
