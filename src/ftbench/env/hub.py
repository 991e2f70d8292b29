"""Is the Hugging Face Hub reachable? Asked once per process, quickly, and never assumed."""

from __future__ import annotations

import contextlib
import functools
import os
import socket
from collections.abc import Iterator
from typing import Any
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
    host, port = url.hostname, url.port or (443 if url.scheme == "https" else 80)
    proxy = _proxy_for(url.scheme, host)
    if proxy is not None:  # behind a proxy (HTTPS_PROXY), as the Hub clients will be
        host, port = proxy.hostname, proxy.port or (443 if proxy.scheme == "https" else 80)
    # A plain TCP connect fails in milliseconds offline, where the Hub clients retry for ~25 s.
    try:
        with socket.create_connection((host, port), timeout=3):
            return None
    except OSError as exc:
        via = f"the proxy {host}:{port} for {url.hostname}" if proxy else url.hostname
        return f"{via} is unreachable ({exc.strerror or exc})"


@contextlib.contextmanager
def offline_when_unreachable() -> Iterator[str | None]:
    """Within: when the Hub is unreachable, the Hub clients (huggingface_hub, datasets) work
    offline, from their caches, instead of retrying for ~25 s. Yields the reason, or None."""
    reason = hub_offline_reason()
    if reason is None:
        yield None
        return
    import datasets.config
    import huggingface_hub.constants

    # Both read these at call time; the environment variables only at import.
    saved = huggingface_hub.constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE
    huggingface_hub.constants.HF_HUB_OFFLINE = datasets.config.HF_HUB_OFFLINE = True
    try:
        yield reason
    finally:
        huggingface_hub.constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE = saved


def _proxy_for(scheme: str, host: str | None) -> Any:
    """The proxy requests (and so huggingface_hub) would use for `host`, from HTTPS_PROXY /
    HTTP_PROXY / ALL_PROXY and NO_PROXY; None for a direct connection."""
    from urllib.request import getproxies, proxy_bypass_environment

    proxies = getproxies()
    proxy = proxies.get(scheme) or proxies.get("all")
    if not proxy or not host or proxy_bypass_environment(host, proxies):
        return None
    return urlparse(proxy if "://" in proxy else f"http://{proxy}")
