"""WebRTC through a real TURN server (coturn on 127.0.0.1), relay-only on both sides.

The server is configured with ``webrtc.ice_servers = [turn:127.0.0.1:PORT + credentials]`` and
``webrtc.ice_transport_policy = "relay"``; a real aiortc viewer is forced to relay-only ICE too
(``iceTransportPolicy="relay"``), so the only way media can flow is through coturn's relays.
Checked: video frames arrive, both peers' nominated candidate pairs are relay ones, and coturn
logged allocations. Once over UDP to the TURN server and once over TCP (``?transport=tcp``: the
one way to reach a facecast server through a firewall that only lets one TCP port through;
aioice has no ICE-TCP host candidates and no UDP port range).
"""
import asyncio

import pytest
from aiohttp import ClientSession
from aiortc import RTCConfiguration, RTCIceServer
from aiortc.rtcconfiguration import RTCIceTransportPolicy

from engine.server import PEERS_KEY
from rtc_client import Viewer
from turn_support import coturn


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_video_flows_through_coturn_relay_only(live_server, tmp_path, transport):
    with coturn(tmp_path) as turn:
        ice = turn.ice_server(transport)
        server = await live_server(webrtc={"ice_servers": [ice], "ice_transport_policy": "relay"})
        viewer = Viewer(rtc_config=RTCConfiguration(
            iceServers=[RTCIceServer(urls=ice["urls"], username=ice["username"], credential=ice["credential"])],
            iceTransportPolicy=RTCIceTransportPolicy.RELAY))
        try:
            async with ClientSession() as http:
                await viewer.connect(http, server.http_url, mode="assistant")
                offer = viewer.pc.localDescription.sdp
                # the viewer offered relay candidates only, on the TURN server's relay address
                cands = [l for l in offer.splitlines() if l.startswith("a=candidate:")]
                assert cands and all(" typ relay" in c for c in cands), cands
                for _ in range(200):                          # ≤ 20 s
                    if len(viewer.video) >= 25:
                        break
                    await asyncio.sleep(0.1)
            assert len(viewer.video) >= 25, f"only {len(viewer.video)} video frames through the relay"
            pair = viewer.selected_pair()
            assert pair is not None and pair.local_candidate.type == "relay", pair
            (peer,) = server.app[PEERS_KEY]
            server_pair = peer.pc.getTransceivers()[0].receiver.transport.transport._connection._nominated.get(1)
            assert server_pair is not None and server_pair.local_candidate.type == "relay", server_pair
            assert server_pair.remote_candidate.type == "relay"
        finally:
            await viewer.close()
        log = turn.log()
        assert log.count("ALLOCATE") >= 2 or log.lower().count("allocation") >= 2, log[-2000:]
