"""Placement arithmetic of the cluster front door (engine/cluster/placement.py) and the
``[cluster]`` config section: pure, no Ray."""
from __future__ import annotations

import pytest

from engine.cluster.placement import (ClusterFull, Node, actor_options, capacity, choose_node, session_resources,
                                      slots_used)
from engine.config import ConfigError, load_config, replace

M = "facecast_worker"


def node(i: int, cpu: float, gpu: float = 0.0, marker: bool = True) -> Node:
    res = {"CPU": cpu, **({"GPU": gpu} if gpu else {}), **({M: 1.0} if marker else {})}
    return Node(f"n{i}", f"10.0.0.{i}", res)


def _only(table: dict):
    """The default config with exactly this session_resources table (replace() would merge it)."""
    import dataclasses
    cfg = load_config()
    return dataclasses.replace(cfg, cluster=dataclasses.replace(cfg.cluster, session_resources=table))


def test_session_resources_by_renderer_and_mode_then_renderer_then_mode():
    cfg = _only({"warp.webcam": {"CPU": 1.5}, "warp": {"CPU": 0.75, "GPU": 0.0}, "echo": {"CPU": 9.0}})
    assert session_resources(cfg, "webcam") == {"CPU": 1.5}
    assert session_resources(cfg, "echo") == {"CPU": 0.75}        # the renderer's entry first; 0s dropped
    assert session_resources(_only({"echo": {"CPU": 9.0}}), "echo") == {"CPU": 9.0}
    with pytest.raises(ClusterFull, match="no entry for warp.assistant"):
        session_resources(_only({"motion": {"CPU": 0.25}}), "assistant")
    assert session_resources(load_config(), "assistant") == {"CPU": 1.0}   # the shipped default


def test_motion_sessions_have_their_own_entry_and_never_fall_back_to_the_renderers():
    cfg = _only({"warp.assistant": {"CPU": 1.0}, "motion.echo": {"CPU": 0.05}, "motion": {"CPU": 0.2}})
    assert session_resources(cfg, "assistant", "motion") == {"CPU": 0.2}
    assert session_resources(cfg, "echo", "motion") == {"CPU": 0.05}
    assert session_resources(cfg, "assistant", "video") == {"CPU": 1.0}
    with pytest.raises(ClusterFull, match="no entry for motion.assistant"):
        session_resources(_only({"warp.assistant": {"CPU": 1.0}}), "assistant", "motion")
    assert session_resources(load_config(), "assistant", "motion") == {"CPU": 0.1}   # the shipped default


def test_slots_used_counts_mixed_session_sizes_in_slots_of_the_new_one():
    held = {"n1": {"CPU": 0.1}, "n2": {"CPU": 2.0}, "n3": {"CPU": 0.30000000000000004}, "n4": {"CPU": 0.0}}
    assert slots_used(held, {"CPU": 1.0}) == {"n1": 1, "n2": 2, "n3": 1, "n4": 0}   # a motion session fills a slot
    assert slots_used(held, {"CPU": 0.1}) == {"n1": 1, "n2": 20, "n3": 3, "n4": 0}
    assert slots_used({"n1": {"CPU": 0.5, "GPU": 0.5}}, {"CPU": 0.5, "GPU": 0.125}) == {"n1": 4}   # the GPU binds
    # a 1-CPU node with one motion session has room for 9 more motion sessions and no video one
    nodes, used = [node(1, 1)], slots_used({"n1": {"CPU": 0.1}}, {"CPU": 1.0})
    with pytest.raises(ClusterFull):
        choose_node(nodes, used, {"CPU": 1.0}, M)
    assert choose_node(nodes, slots_used({"n1": {"CPU": 0.1}}, {"CPU": 0.1}), {"CPU": 0.1}, M).node_id == "n1"


def test_capacity_counts_whole_sessions_in_every_needed_resource_and_needs_the_marker():
    assert capacity(node(1, 8), {"CPU": 1.0}, M) == 8
    assert capacity(node(1, 8), {"CPU": 3.0}, M) == 2
    assert capacity(node(1, 3), {"CPU": 0.3}, M) == 10            # 3 / 0.3 is 9.999… in floats
    assert capacity(node(1, 16, gpu=1), {"CPU": 0.5, "GPU": 0.125}, M) == 8   # the GPU share binds
    assert capacity(node(1, 16), {"CPU": 0.5, "GPU": 0.125}, M) == 0          # no GPU: none
    assert capacity(node(1, 8, marker=False), {"CPU": 1.0}, M) == 0
    assert capacity(node(1, 8, marker=False), {"CPU": 1.0}, "") == 8


def test_choose_node_spreads_skips_full_and_quarantined_nodes_and_says_when_full():
    nodes = [node(1, 2), node(2, 2), node(3, 1)]
    need = {"CPU": 1.0}
    assert choose_node(nodes, {}, need, M).node_id == "n1"                 # most free slots, then id
    assert choose_node(nodes, {"n1": 1}, need, M).node_id == "n2"
    assert choose_node(nodes, {"n1": 1, "n2": 1}, need, M).node_id == "n3"  # 1 free each: fewer sessions
    assert choose_node(nodes, {"n1": 2, "n2": 2}, need, M).node_id == "n3"
    assert choose_node(nodes, {"n1": 1}, need, M, avoid={"n2", "n3"}).node_id == "n1"
    with pytest.raises(ClusterFull, match=r"5 of 5 session slots are taken on 3 live node"):
        choose_node(nodes, {"n1": 2, "n2": 2, "n3": 1}, need, M)
    with pytest.raises(ClusterFull, match=r"2 of 2 session slots are taken on 1 live node"):
        choose_node(nodes, {"n1": 2}, need, M, avoid={"n2", "n3"})
    with pytest.raises(ClusterFull, match=r"0 of 0"):
        choose_node([], {}, need, M)


def test_actor_options_hold_cpu_gpu_and_custom_resources():
    assert actor_options({"CPU": 1.0}) == {"num_cpus": 1.0, "num_gpus": 0.0}
    assert actor_options({"CPU": 0.5, "GPU": 0.125, "vram_gb": 2.0}) == {
        "num_cpus": 0.5, "num_gpus": 0.125, "resources": {"vram_gb": 2.0}}


@pytest.mark.parametrize("section,match", [
    ({"address": "http://x"}, "cluster.address"),
    ({"address": "ray://head:10001"}, None),
    ({"address": "10.0.0.1:6379"}, None),
    ({"address": "auto"}, None),
    ({"session_resources": {"warp.assistant": {"CPU": -1}}}, r"warp.assistant.CPU: -1"),
    ({"session_resources": {"warp.assistant": {"CPU": "one"}}}, "not a number"),
    ({"session_resources": {"warp.assistant": {"CPU": 0}}}, "must need some resource"),
    ({"session_resources": {"warp.assistant": 1}}, "expected a table"),
    ({"place_timeout_s": 0}, "below the minimum"),
    ({"nodes": 3}, "unknown key"),
])
def test_cluster_config_is_validated(section, match):
    if match is None:
        assert replace(load_config(), cluster=section).cluster.address == section["address"]
    else:
        with pytest.raises(ConfigError, match=match):
            replace(load_config(), cluster=section)


def test_default_config_is_one_box():
    assert load_config().cluster.address == ""


def test_cli_refuses_bad_cluster_options_in_one_line(capsys):
    from engine.cli import main
    assert main(["serve", "--cluster", "http://head:8265", "--port", "0"]) == 2
    assert "cluster.address" in capsys.readouterr().err
    assert main(["serve", "--cluster", "127.0.0.1:1", "--port", "0"]) == 2     # nothing listens there
    import importlib.util
    expected = ("cannot join the Ray cluster at '127.0.0.1:1'" if importlib.util.find_spec("ray")
                else "--cluster needs Ray: pip install 'facecast[cluster]'")
    assert expected in capsys.readouterr().err
    assert main(["bench", "cluster", "--max-sessions", "0"]) == 2
    assert "--max-sessions must be >= 1" in capsys.readouterr().err
    assert main(["bench", "cluster", "--renderer", "splat", "--size", "10"]) == 2     # before any Ray starts
    assert "video.width: 10 is below the minimum" in capsys.readouterr().err


def test_a_session_over_the_frame_budget_saturates_its_node():
    from engine.cluster.load import over_budget
    assert not over_budget({"frames": 50, "frame_p95_ms": 39.0, "skipped_ticks": 0}, 40.0)
    assert over_budget({"frames": 50, "frame_p95_ms": 41.0, "skipped_ticks": 0}, 40.0)
    assert over_budget({"frames": 50, "frame_p95_ms": 10.0, "skipped_ticks": 2}, 40.0)
    assert not over_budget({"frames": 3, "frame_p95_ms": 400.0, "skipped_ticks": 0}, 40.0)   # too few frames
    assert not over_budget({"frames": 0, "frame_p95_ms": None, "skipped_ticks": 0}, 40.0)
    # the motion model falling behind (motion-mode nodes run out of this first)
    assert over_budget({"frames": 100, "frame_p95_ms": 5.0, "skipped_ticks": 0, "underruns": 6}, 40.0)
    assert not over_budget({"frames": 100, "frame_p95_ms": 5.0, "skipped_ticks": 0, "underruns": 5}, 40.0)


def test_a_motion_session_ends_warm_video_actors_only_when_the_node_cannot_hold_both():
    """WarmPool.take's room rule (pure: the placements' actors are never started here)."""
    import types
    from engine.cluster.frontdoor import Placement
    from engine.cluster.pool import WarmPool
    fd = types.SimpleNamespace(held={}, config=load_config())
    pool = WarmPool(fd)
    warm = Placement(actor=None, node_id="n1", need={"CPU": 1.0})
    pool.idle["n1"].append(warm)
    fd.held = {"n1": {"CPU": 0.2}}                         # two motion sessions, this one included
    assert pool.take("n1", {"CPU": 0.1}, {"CPU": 2.0}) is None and pool.idle["n1"] == [warm]   # 1.2 ≤ 2: kept
    fd.held = {"n1": {"CPU": 1.1}}
    assert pool.take("n1", {"CPU": 0.1}, {"CPU": 2.0}) is None and pool.idle["n1"] == []       # 2.1 > 2: ended
    pool.idle["n1"].append(warm)
    assert pool.take("n1", {"CPU": 1.0}, {"CPU": 2.0}) is warm                                # same size: taken


def test_the_bench_ramp_share_fits_exactly_that_many_sessions():
    """`facecast bench cluster` sizes each session so that --max-sessions fit on the node (2 cores
    / 3 sessions rounded to nearest, 0.666667, fits only 2: the ramp's third step was refused)."""
    from engine.cluster.bench import ramp_share
    for cpus in (1, 2, 3, 4, 16):
        for sessions in range(1, 13):
            share = ramp_share(cpus, sessions)
            assert capacity(Node("n", "", {"CPU": cpus}), {"CPU": share}) == sessions, (cpus, sessions, share)
    assert ramp_share(2, 3) == 0.6666
