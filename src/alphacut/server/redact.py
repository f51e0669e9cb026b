"""What a client may read of an error: no path on the server's disk, no model mirror.

A library error names files fully, which a terminal's user needs; a server's client must
not learn the server's home, cache or state folders, nor where it fetches models from.
Paths on this machine keep their last part (the file a client may recognise as its own
upload's name);
URLs in model errors become "<model source>".
"""

from __future__ import annotations

import os
import re

from ..errors import AlphacutError, ModelError

__all__ = ["public_message"]

_PATH = re.compile(r"(?<![\w.:/])/(?:[^\s/'\"`,;()]+/)+([^\s/'\"`,;()]*)")
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s'\"`]*[^\s'\"`:,;.)]", re.IGNORECASE)


def public_message(exc: AlphacutError, *, reason: bool = False) -> str:
    """The message of `exc` as a client may read it; `reason`: without the input's name."""
    text = str(getattr(exc, "reason", exc) if reason else exc)
    if isinstance(exc, ModelError):
        text = _URL.sub("<model source>", text)
    return _PATH.sub(_local_path, text)


def _local_path(found: re.Match[str]) -> str:
    """A path on this machine (its folder exists here) as its last part; anything else
    that looks like a path (an API route such as /api/models) as it was."""
    path = found.group(0)
    if not os.path.isdir(os.path.dirname(path.rstrip("/")) or "/"):
        return path
    return found.group(1) or "<folder>"
