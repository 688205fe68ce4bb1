"""Sessions on a Ray cluster (``facecast serve --cluster ...``; docs/deploy.md, "Ray cluster").

    placement.py  what one session needs (cluster.session_resources) and which node gets it: pure
    load.py       admission by measured load: nodes whose sessions miss the frame budget
    pool.py       warm session actors waiting on nodes with room
    relay.py      the worker's end of a WebSocket relayed by the front door (duck-types aiohttp's)
    worker.py     SessionWorker: the Ray actor hosting one session, its aiortc peers and sockets
    frontdoor.py  the front door: Ray connection, placement, routing table, faults
    app.py        its aiohttp app: /v1/offer, the relayed /v1/ws, /healthz, /metrics, the client
    bench.py      `facecast bench cluster`: sessions per node at the p95 frame budget, signalling

Nothing here is imported by ``facecast serve`` without ``--cluster``; ray itself is imported only
by frontdoor.py and inside the actor (tests/test_layering.py checks both).
"""
