"""Fixtures shared by the whole suite.

``config``    the default configuration (frozen dataclasses), once per session.
``avatar``    the default avatar asset (assets/default.avatar: skimage's astronaut), loaded once
              per session; its arrays are made read-only so a test that writes into them fails
              at once instead of changing the avatar under every later test.
``renderer``  the CPU reference WarpRenderer of ``avatar`` at 512×512 (the default video size),
              once per session. The CPU backend is chosen explicitly so pixel measurements are the
              same on machines with and without a GPU. It keeps no state between frames.
``live_server``  an async factory: ``srv = await live_server(**config_sections)`` starts the real
              aiohttp app (engine.server.create_app) on a free 127.0.0.1 port with
              ``replace(load_config(), **config_sections)`` and returns a ``ws_support.LiveServer``:
              ``srv.config``, ``srv.app``, ``srv.registry``, ``srv.port``, ``srv.http_url``,
              ``srv.ws_url``. Every server it started is stopped at teardown. ICE is loopback only
              for the test (aioice leaves out 127.0.0.1; the tests talk over loopback).
``server``    ``await live_server()``: a live server with the default configuration.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from engine.avatar.asset import load_avatar
from engine.config import ASSETS_DIR, load_config
from engine.render.warp import WarpRenderer



@pytest.fixture(scope="session")
def config():
    return load_config()


@pytest.fixture(scope="session")
def avatar():
    av = load_avatar(ASSETS_DIR / "default.avatar")
    for field in dataclasses.fields(av):
        value = getattr(av, field.name)
        if isinstance(value, np.ndarray):
            value.flags.writeable = False
    return av


@pytest.fixture(scope="session")
def renderer(avatar):
    return WarpRenderer(avatar, 512, 512, backend="cpu")


@pytest.fixture
async def live_server(monkeypatch):
    from rtc_client import use_loopback_ice   # (aiortc and the server app: imported when used)
    from ws_support import LiveServer
    use_loopback_ice(monkeypatch)
    started: list[LiveServer] = []

    async def start(**config_sections) -> LiveServer:
        srv = LiveServer(**config_sections)
        await srv.start()
        started.append(srv)
        return srv

    yield start
    for srv in reversed(started):
        await srv.close()


@pytest.fixture
async def server(live_server):
    return await live_server()
