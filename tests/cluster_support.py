"""A real multi-node Ray cluster on this machine and the cluster front door on a loopback port
(not a test module; tests/test_cluster_ray.py uses it).

The cluster is tiny — a head that hosts nothing (num_cpus=0) and ``N_WORKERS`` worker nodes of
one CPU each, advertising ``facecast_worker`` — so one warp session (CPU = 1.0) fills a node.
Each worker node also has its own custom resource ``fc_node_<i>``, which makes placement
observable in ``ray.nodes()``. Health checks are fast so a removed node is declared dead in
about a second, not fifteen.
"""
from __future__ import annotations

import asyncio

from aiohttp.test_utils import TestServer

from engine.config import load_config, replace

N_WORKERS = 3
STORE_BYTES = 80 * 1024 * 1024
FAST_HEALTH_CHECKS = {"health_check_initial_delay_ms": 0, "health_check_period_ms": 300,
                      "health_check_timeout_ms": 300, "health_check_failure_threshold": 3}
CLUSTER_CONFIG = {
    "video": {"width": 128, "height": 128},
    "server": {"rate_limit_requests": 0, "max_connections_per_ip": 0},
    "cluster": {"address": "auto", "session_resources": {"warp.assistant": {"CPU": 1.0}, "warp.echo": {"CPU": 1.0}},
                "node_refresh_s": 0.2, "place_timeout_s": 90.0, "relay_poll_s": 1.0,
                # admission by measured load is tested on its own (the loaded test machine misses
                # the 40 ms budget now and then, which must not refuse the other tests' sessions)
                "saturated_frame_p95_ms": 0.0},
}


def start_cluster():
    """(cluster, worker node handles); this process is connected to it as a Ray driver."""
    import ray
    from ray.cluster_utils import Cluster
    if ray.is_initialized():   # an earlier test's driver connection (ray.* calls auto-initialise)
        ray.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 0, "include_dashboard": False, "object_store_memory": STORE_BYTES,
        "_system_config": FAST_HEALTH_CHECKS})
    workers = [add_worker(cluster, i) for i in range(N_WORKERS)]
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, namespace="facecast-test", log_to_driver=False)
    return cluster, workers


def add_worker(cluster, i: int):
    return cluster.add_node(num_cpus=1, resources={"facecast_worker": 1, f"fc_node_{i}": 1},
                            object_store_memory=STORE_BYTES)


def stop_cluster(cluster) -> None:
    import ray
    ray.shutdown()
    cluster.shutdown()


class FrontDoorServer:
    """The real front door app (engine.cluster.app) on a free 127.0.0.1 port."""

    def __init__(self, **sections) -> None:
        from engine.cluster.app import FRONTDOOR_KEY, create_cluster_app
        merged = {k: {**CLUSTER_CONFIG.get(k, {}), **sections.get(k, {})} for k in {*CLUSTER_CONFIG, *sections}}
        self.config = replace(load_config(), **merged)
        self.app = create_cluster_app(self.config)
        self.fd = self.app[FRONTDOOR_KEY]
        self.server = TestServer(self.app, host="127.0.0.1", port=0)

    async def __aenter__(self) -> "FrontDoorServer":
        await self.server.start_server()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.server.close()

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.server.port}/v1/ws"


async def until(predicate, timeout_s: float, step_s: float = 0.1) -> bool:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    while loop.time() < end:
        if predicate():
            return True
        await asyncio.sleep(step_s)
    return bool(predicate())
