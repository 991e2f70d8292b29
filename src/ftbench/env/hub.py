"""Is the Hugging Face Hub reachable? Asked once per process, quickly, and never assumed."""

from __future__ import annotations

import functools
import os
import socket
from urllib.parse import urlparse

_TRUE = {"1", "on", "yes", "true"}


def hub_offline_reason() -> str | None:
    """Why the Hub can't be used now (a short phrase), or None when it answers."""
    return _probe(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))


@functools.lru_cache(maxsize=4)
def _probe(endpoint: str) -> str | None:
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in _TRUE:
            return f"{var}=1 is set"
    url = urlparse(endpoint)
    port = url.port or (443 if url.scheme == "https" else 80)
    # A plain TCP connect fails in milliseconds offline, where the Hub clients retry for ~25 s.
    try:
        with socket.create_connection((url.hostname, port), timeout=3):
            return None
    except OSError as exc:
        return f"{url.hostname} is unreachable ({exc.strerror or exc})"
