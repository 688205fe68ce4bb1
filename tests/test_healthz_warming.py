"""/healthz says "warming": true while the model and renderer load after start (the browser page
shows "server warming up…" then), and drops it once they are ready."""
import asyncio

from aiohttp import ClientSession


async def test_healthz_reports_warming_until_warm(live_server):
    server = await live_server()
    seen = []
    async with ClientSession() as http:
        for _ in range(600):                        # ≤ 60 s
            body = await (await http.get(f"{server.http_url}/healthz")).json()
            seen.append(body.get("warming", False))
            if not seen[-1]:
                break
            await asyncio.sleep(0.1)
    assert body == {"ok": True, "sessions": 0}, body
    assert seen[0] is True, "the first /healthz right after start should still be warming"
