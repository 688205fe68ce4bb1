"""The HTTP side of client-side rendering: GET /v1/avatar.glb (the avatar as glTF, cached, with
the offer's avatar rules and the token) and GET /vr (the WebXR client page)."""
import aiohttp

from engine.avatar.gltf import read_glb
from engine.motion.space import ARKIT_NAMES

TOKEN = "s3cret-test-token"


async def test_avatar_glb_route(live_server):
    srv = await live_server()
    async with aiohttp.ClientSession() as http:
        r = await http.get(f"{srv.http_url}/v1/avatar.glb")
        assert r.status == 200 and r.content_type == "model/gltf-binary"
        gltf, _ = read_glb(await r.read())
        assert gltf["meshes"][0]["extras"]["targetNames"] == list(ARKIT_NAMES)
        again = await http.get(f"{srv.http_url}/v1/avatar.glb?avatar=default")
        assert again.status == 200 and len(await again.read()) == r.content_length
        missing = await http.get(f"{srv.http_url}/v1/avatar.glb?avatar=nobody")
        assert missing.status == 404 and (await missing.json())["error"] == "unknown_avatar"
        outside = await http.get(f"{srv.http_url}/v1/avatar.glb?avatar=../pyproject.toml")
        assert outside.status == 400 and (await outside.json())["error"] == "bad_avatar"
        page = await http.get(f"{srv.http_url}/vr")
        assert page.status == 200 and "importmap" in await page.text()
        js = await http.get(f"{srv.http_url}/vr/motion.js")
        assert js.status == 200 and "decodeFrame" in await js.text()


async def test_avatar_glb_needs_the_token(live_server):
    srv = await live_server(server={"token": TOKEN})
    async with aiohttp.ClientSession() as http:
        assert (await http.get(f"{srv.http_url}/v1/avatar.glb")).status == 401
        assert (await http.get(f"{srv.http_url}/v1/avatar.glb?token={TOKEN}")).status == 200
        ok = await http.get(f"{srv.http_url}/v1/avatar.glb", headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status == 200
