"""Per-client-IP limits against a real server on loopback (docs/security.md): a token bucket on
POST /v1/offer and new WebSockets, and a cap on the connections one IP holds at once. Each probe
runs beside a well-behaved assistant session (tests/bystander.py) from another loopback address,
127.0.0.2: one IP's limits must not cost another client its frame rate or events."""
import asyncio
import time

import aiohttp
from aiohttp import ClientSession

from bystander import bystander
from engine.ratelimit import TokenBuckets


async def _offer_status(http, url):
    async with http.post(url + "/v1/offer", data="{", headers={"Content-Type": "application/json"}) as r:
        return r.status, (await r.json()), r.headers


async def _ws_status(http, url):
    try:
        ws = await http.ws_connect(url, timeout=aiohttp.ClientWSTimeout(ws_close=5))
    except aiohttp.WSServerHandshakeError as e:
        return e.status, None
    return 101, ws


async def test_offers_are_rate_limited_per_ip_and_allowed_again_after_the_window(live_server):
    srv = await live_server(server={"rate_limit_requests": 3, "rate_limit_window_s": 1.5})
    async with bystander(srv) as by:
        async with ClientSession() as http:
            for _ in range(3):   # a broken body: 400 from the handler, but each one costs a token
                status, body, _ = await _offer_status(http, srv.http_url)
                assert status == 400 and body["error"] == "bad_json"
            status, body, headers = await _offer_status(http, srv.http_url)
            assert status == 429 and body["error"] == "rate_limited", body
            assert "rate_limit_requests" in body["message"] and int(headers["Retry-After"]) >= 1
            # new WebSockets draw on the same bucket
            assert (await _ws_status(http, srv.ws_url))[0] == 429
            await asyncio.sleep(0.6)   # 2 requests/s refill: one token back
            status, body, _ = await _offer_status(http, srv.http_url)
            assert status == 400 and body["error"] == "bad_json"
            status, body, _ = await _offer_status(http, srv.http_url)
            assert status == 429


async def test_connections_per_ip_are_capped_and_freed_when_closed(live_server):
    srv = await live_server(server={"max_connections_per_ip": 2, "rate_limit_requests": 0})
    async with bystander(srv) as by:
        async with ClientSession() as http:
            held = []
            for _ in range(2):
                status, ws = await _ws_status(http, srv.ws_url)
                assert status == 101
                held.append(ws)
            assert (await _ws_status(http, srv.ws_url))[0] == 429
            async with http.post(srv.http_url + "/v1/offer", data="{",
                                 headers={"Content-Type": "application/json"}) as r:
                assert r.status == 429 and (await r.json())["error"] == "too_many_connections"
            await held.pop().close()
            deadline = time.monotonic() + 5
            while True:   # the server counts the socket until its handler has returned
                status, ws = await _ws_status(http, srv.ws_url)
                if status == 101 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.05)
            assert status == 101
            held.append(ws)
            for ws in held:
                await ws.close()


def test_token_bucket_refills_continuously():
    now = [0.0]
    b = TokenBuckets(10, 10.0, clock=lambda: now[0])
    assert all(b.take("a") == 0.0 for _ in range(10))
    assert b.take("a") > 0.0 and b.take("b") == 0.0      # per IP
    now[0] += 1.0
    assert b.take("a") == 0.0 and b.take("a") > 0.0
    assert TokenBuckets(0, 10.0).take("a") == 0.0          # 0 = off
