"""What the environment layer says about the machine: the Hub behind a proxy, the Apple chip."""

from __future__ import annotations

import socket
import subprocess

import pytest

from ftbench.env import devices, hub


@pytest.fixture
def online(monkeypatch: pytest.MonkeyPatch) -> None:
    """No offline switch set, and no proxy but the test's own; the probe's cache cleared."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY",
                "all_proxy", "NO_PROXY", "no_proxy"):  # fmt: skip
        monkeypatch.delenv(var, raising=False)
    hub._probe.cache_clear()
    yield
    hub._probe.cache_clear()


def _listening() -> socket.socket:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    return server


def test_behind_a_proxy_the_hub_check_asks_the_proxy(
    online: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 20: a raw connect to the Hub fails behind a proxy though the clients get through."""
    unreachable = "http://127.0.0.1:9"  # discard port: nothing listens
    monkeypatch.setenv("HF_ENDPOINT", unreachable)
    with _listening() as proxy:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.getsockname()[1]}")
        assert hub.hub_offline_reason() is None  # the proxy answers
    hub._probe.cache_clear()
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    reason = hub.hub_offline_reason()
    assert reason.startswith("the proxy 127.0.0.1:9 for 127.0.0.1 is unreachable")


def test_no_proxy_connects_directly(online: None, monkeypatch: pytest.MonkeyPatch) -> None:
    with _listening() as server:
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.getsockname()[1]}")
        monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        assert hub.hub_offline_reason() is None


def test_while_the_hub_is_unreachable_its_clients_use_their_caches_at_once(
    online: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Offline, datasets' load_dataset retried for ~24 s before saying what a connect knew."""
    import datasets.config
    import huggingface_hub

    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    before = huggingface_hub.constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE
    with hub.offline_when_unreachable() as reason:
        assert reason.startswith("127.0.0.1 is unreachable")
        assert huggingface_hub.is_offline_mode()
        assert datasets.config.HF_HUB_OFFLINE
    assert before == (huggingface_hub.constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE)
    hub._probe.cache_clear()
    with _listening() as server:
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.getsockname()[1]}")
        with hub.offline_when_unreachable() as reason:
            assert reason is None
            assert huggingface_hub.is_offline_mode() == before[0]


def test_the_offline_switch_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    hub._probe.cache_clear()
    assert hub.hub_offline_reason() == "HF_HUB_OFFLINE=1 is set"  # conftest sets it


def test_each_apple_chip_has_its_own_hardware_id(monkeypatch: pytest.MonkeyPatch) -> None:
    def sysctl(*args: object, **kwargs: object) -> subprocess.CompletedProcess:
        return subprocess.CompletedProcess(args, 0, stdout="Apple M2 Pro\n")

    monkeypatch.setattr(subprocess, "run", sysctl)
    assert devices.hardware_id("mps") == "apple-m2-pro-gpu-mps"

    def missing(*args: object, **kwargs: object) -> None:
        raise FileNotFoundError("sysctl")

    monkeypatch.setattr(subprocess, "run", missing)
    monkeypatch.setattr(devices.platform, "machine", lambda: "arm64")
    assert devices.hardware_id("mps") == "apple-arm64-gpu-mps"
