"""Sessions on a Ray cluster (``facecast serve --cluster ...``; docs/deploy.md, "Ray cluster").

    placement.py  what one session needs (cluster.session_resources) and which node gets it: pure
    relay.py      the worker's end of a WebSocket relayed by the front door (duck-types aiohttp's)
    worker.py     SessionWorker: the Ray actor hosting one session, its aiortc peers and sockets
    frontdoor.py  the front door: Ray connection, placement, routing table, the aiohttp app

Nothing here is imported by ``facecast serve`` without ``--cluster``; ray itself is imported only
by frontdoor.py and inside the actor (tests/test_layering.py checks both).
"""
