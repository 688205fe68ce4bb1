"""Your own photo in three lines: `serve --avatar me.avatar` from the current directory, and
clients naming any avatar file in the server's avatar folder (`server.avatar_dir`), over the
WebSocket (`session.create`) and WebRTC (the offer's `avatar`). Real server, real clients."""
import asyncio
import os
import shutil
import subprocess
import sys

from aiohttp import ClientSession

from engine.config import ASSETS_DIR, REPO_ROOT
from facecast_client import FacecastClient, FacecastError
from rtc_client import Viewer
from turn_support import free_port

import pytest


def _avatar_dir(tmp_path):
    d = tmp_path / "avatars"
    (d / "team").mkdir(parents=True)
    shutil.copy(ASSETS_DIR / "default.avatar", d / "me.avatar")
    shutil.copy(ASSETS_DIR / "default.avatar", d / "team" / "alice.avatar")
    (d / "fake.avatar").write_bytes(b"this is a text file, not an avatar")
    (tmp_path / "outside.avatar").write_bytes((ASSETS_DIR / "default.avatar").read_bytes())
    return d


async def test_clients_name_avatars_in_the_configured_folder(live_server, tmp_path):
    d = _avatar_dir(tmp_path)
    server = await live_server(server={"avatar_dir": str(d)})
    for name, stem in (("me", "me"), ("me.avatar", "me"), ("team/alice", "alice")):
        async with await FacecastClient.connect(server.ws_url, avatar=name) as c:
            assert c.ready["avatar"] == stem
            assert server.registry.get(c.session_id).avatar_path == (d / f"{name.removesuffix('.avatar')}.avatar").resolve()
    for name, code in (("fake", "bad_avatar"), ("../outside", "bad_avatar"), ("nobody", "unknown_avatar"),
                       ("default", "unknown_avatar")):   # the repository's assets/ is not the folder now
        with pytest.raises(FacecastError) as e:
            await FacecastClient.connect(server.ws_url, avatar=name)
        assert e.value.code == code, (name, e.value)
        assert str(tmp_path) not in e.value.message     # no server paths in messages
    viewer = Viewer()
    async with ClientSession() as http:
        answer = await viewer.connect(http, server.http_url, mode="assistant", avatar="team/alice")
        assert server.registry.get(answer["session_id"]).avatar_path.name == "alice.avatar"
        await viewer.close()
        # a file that is not an avatar is refused before a session exists
        vi = Viewer()
        await vi.pc.setLocalDescription(await vi.pc.createOffer())
        resp = await http.post(f"{server.http_url}/v1/offer", json={"sdp": vi.pc.localDescription.sdp,
                                                                     "type": "offer", "avatar": "fake"})
        body = await resp.json()
        assert resp.status == 400 and body["error"] == "bad_avatar" and "avatar create" in body["message"]
        await vi.pc.close()


async def test_serve_avatar_from_the_current_directory(tmp_path):
    shutil.copy(ASSETS_DIR / "default.avatar", tmp_path / "me.avatar")
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "serve", "--avatar", "me.avatar", "--port", str(port)],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        async with ClientSession() as http:
            for _ in range(600):                 # ≤ 60 s
                assert proc.poll() is None, proc.stdout.read()
                try:
                    if (await http.get(f"http://127.0.0.1:{port}/healthz")).status == 200:
                        break
                except OSError:
                    pass
                await asyncio.sleep(0.1)
        async with await FacecastClient.connect(f"ws://127.0.0.1:{port}/v1/ws") as c:
            assert c.ready["avatar"] == "me"     # the default session avatar is ./me.avatar
    finally:
        proc.send_signal(2)
        try:
            out, _ = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate(timeout=5)
    assert "serving me.avatar" in out
