"""With a local model, neither a run nor the server sends anything off the machine."""

from __future__ import annotations

import socket
from types import ModuleType
from typing import Any

import pytest
from PIL import Image

from ui import models

LOCAL = {"127.0.0.1", "::1", "localhost", "0.0.0.0"}


@pytest.fixture
def outside(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Refuse and record every connection or name lookup that is not loopback."""
    attempts: list[str] = []
    connect, getaddrinfo = socket.socket.connect, socket.getaddrinfo

    def guarded_connect(self: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else str(address)
        if self.family in (socket.AF_INET, socket.AF_INET6) and host not in LOCAL:
            attempts.append(f"connect {host}")
            raise OSError("network disabled by the test")
        return connect(self, address)

    def guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in LOCAL and host is not None:
            attempts.append(f"lookup {host}")
            raise socket.gaierror("network disabled by the test")
        return getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket, "getaddrinfo", guarded_getaddrinfo)
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):  # prove it without the safety net
        monkeypatch.delenv(name, raising=False)
    return attempts


def test_run_and_serve_stay_on_the_machine(
    outside: list[str],
    handlers: ModuleType,
    app_module: ModuleType,
    tiny_model: str,
    picture: Image.Image,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(models, "_MODELS", {})  # load the model again, under the guard
    view = handlers.explain_view(picture, "what colour", tiny_model, settings())
    assert view.status.startswith("Done"), view.status
    demo = app_module.build_demo()
    demo.launch(
        prevent_thread_lock=True, server_name="127.0.0.1", quiet=True, **app_module.launch_options()
    )
    demo.close()
    assert outside == []
