"""Placement of one session on a node: what it needs and which node has room. Pure (no ray).

A session holds ``cluster.session_resources[RENDERER.MODE]`` (e.g. ``{"CPU": 1.0}`` for warp
video on a CPU node, ``{"CPU": 0.5, "GPU": 0.125}`` on a GPU node); a motion-mode session
(``"output": "motion"``: no renderer) holds ``session_resources["motion.MODE"]``, else
``["motion"]`` (default ``{"CPU": 0.1}``). A node's capacity is how many such sessions fit in its
*total* resources (``ray.nodes()``); the front door subtracts what the sessions it placed there
itself hold (``slots_used``: video and motion sessions of different sizes share a node), so
admission does not depend on Ray's eventually consistent view of available resources. The amounts come from measurement: `facecast bench cluster`
reports sessions per node at the p95 frame budget, and one session's share is cores / sessions.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from engine.config import Config

# Ray's spelling of the built-in resources in ray.nodes() and actor options
CPU, GPU = "CPU", "GPU"


class ClusterFull(RuntimeError):
    """No live node has room for one more session (the client is told so: 503 / cluster_full)."""


MOTION = "motion"     # the output of a session that runs no renderer (docs/protocol.md, "Motion mode")


def session_resources(config: Config, mode: str, output: str = "video") -> dict[str, float]:
    """What one session of ``mode`` holds: ``RENDERER.MODE``, else ``RENDERER``, else ``MODE``;
    for ``output == "motion"`` (no renderer): ``motion.MODE``, else ``motion``."""
    table = config.cluster.session_resources
    head = MOTION if output == MOTION else config.render.renderer
    keys = (f"{head}.{mode}", head) if output == MOTION else (f"{head}.{mode}", head, mode)
    for key in keys:
        if key in table:
            return {k: float(v) for k, v in table[key].items() if v}
    raise ClusterFull(f"cluster.session_resources has no entry for {keys[0]} (nor "
                      f"{' or '.join(repr(k) for k in keys[1:])}): sessions of this kind cannot be placed")


def slots_used(held: dict[str, dict[str, float]], need: dict[str, float]) -> dict[str, int]:
    """Per node id, how many sessions of size ``need`` the resources ``held`` there take up (what
    a node's sessions of any size hold, rounded up to whole slots of ``need``): with one size
    this is the session count; one 0.1-CPU motion session fills a 1-CPU video slot."""
    out = {}
    for node_id, res in held.items():
        used = max((res.get(name, 0.0) / amount for name, amount in need.items() if amount > 0), default=0.0)
        out[node_id] = math.ceil(used - 1e-9) if used > 0 else 0
    return out


@dataclass(frozen=True)
class Node:
    """One live Ray node as the front door sees it."""
    node_id: str
    address: str
    resources: dict          # total resources ("CPU", "GPU", custom), from ray.nodes()


def capacity(node: Node, need: dict[str, float], marker: str = "") -> int:
    """How many sessions needing ``need`` fit on ``node`` (0 when it lacks ``marker``)."""
    if marker and node.resources.get(marker, 0) <= 0:
        return 0
    fits = [math.floor(node.resources.get(name, 0.0) / amount + 1e-9) for name, amount in need.items() if amount > 0]
    return max(0, min(fits)) if fits else 0


def choose_node(nodes: list[Node], placed: dict[str, int], need: dict[str, float], marker: str = "",
                avoid: set[str] = frozenset()) -> Node:
    """The live node with the most free session slots (ties: fewer sessions, then node id); raises
    ``ClusterFull`` with the totals when none has a slot. ``placed``: sessions per node id
    this front door holds; ``avoid``: node ids in quarantine (a worker died there)."""
    best, best_key, total, used = None, None, 0, 0
    for node in nodes:
        cap = capacity(node, need, marker)
        n = placed.get(node.node_id, 0)
        if node.node_id in avoid:
            continue
        total, used = total + cap, used + min(n, cap)
        free = cap - n
        if free <= 0:
            continue
        key = (-free, n, node.node_id)
        if best_key is None or key < best_key:
            best, best_key = node, key
    if best is None:
        hosts = sum(1 for node in nodes if node.node_id not in avoid and capacity(node, need, marker) > 0)
        raise ClusterFull(f"the cluster is full: {used} of {total} session slots are taken on {hosts} live "
                          f"node(s) (each session holds {need}); try again later")
    return best


def actor_options(need: dict[str, float]) -> dict:
    """``ActorClass.options(...)`` keyword arguments holding ``need`` for the actor's lifetime."""
    custom = {k: v for k, v in need.items() if k not in (CPU, GPU)}
    opts = {"num_cpus": need.get(CPU, 0.0), "num_gpus": need.get(GPU, 0.0)}
    if custom:
        opts["resources"] = custom
    return opts
