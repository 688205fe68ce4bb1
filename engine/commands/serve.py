"""``facecast serve``: the WebRTC + WebSocket server for the default (or a given) avatar.

What a user can get wrong (a missing or invalid config, an avatar that is not there or not an
avatar, a port already in use) is told in one line on stderr with a non-zero exit, before the
model and renderer are loaded.
"""
from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from pathlib import Path

from engine.config import ConfigError, load_config, replace

# Libraries whose INFO output is noise for a user (ICE candidate checks, TURN refreshes);
# shown with --log-level debug.
CHATTY_LOGGERS = ("aioice", "aiortc", "absl", "mediapipe", "numba", "matplotlib", "PIL")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=None, help="listen address (default: server.host)")
    parser.add_argument("--port", type=int, default=None, help="listen port (default: server.port)")
    parser.add_argument("--avatar", default=None,
                        help="avatar file, relative to the current directory (default: render.avatar)")
    parser.add_argument("--cluster", default=None, metavar="ADDRESS",
                        help='place sessions on a Ray cluster: "auto" (local Ray), "ray://HOST:10001" or '
                             '"HOST:6379" (default: cluster.address; docs/deploy.md)')
    parser.add_argument("--log-level", default="INFO", type=str.upper,
                        choices=("DEBUG", "INFO", "WARNING", "ERROR"))


def fail(message: str, code: int = 2) -> int:
    print(f"facecast serve: {message}", file=sys.stderr, flush=True)
    return code


def quiet_libraries(level: str) -> None:
    """Keep aioice's / mediapipe's chatter out of the log unless debugging."""
    if level == "DEBUG":
        return
    os.environ.setdefault("GLOG_minloglevel", "2")        # mediapipe's C++ (glog) logging
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def resolve_cli_avatar(path: str) -> Path:
    """An avatar named on the command line: relative to the current directory (as `render`
    does), not to the repository."""
    return Path(path).expanduser().resolve()


def check_avatar(path: Path) -> str | None:
    """Why ``path`` cannot be served as an avatar, or None."""
    from engine.sessions import is_avatar_file
    if not path.exists():
        return f"avatar file {path} does not exist (create one with `facecast avatar create PHOTO -o NAME.avatar`)"
    if path.is_dir():
        return f"avatar path {path} is a directory, not an .avatar file"
    if not is_avatar_file(path):
        return (f"{path} is not a facecast avatar file (make one from a photo with "
                f"`facecast avatar create {path.name} -o {path.stem}.avatar`)")
    return None


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound now, so a taken port is reported before anything is loaded."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, _, _, _, addr = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if os.name == "posix":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(128)
    except BaseException:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def port_owner(host: str, port: int, timeout: float = 1.0) -> str:
    """Who answers on a taken port: a facecast server (its /healthz) or something else."""
    import json
    import urllib.request
    h = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
    try:
        with urllib.request.urlopen(f"http://{h}:{port}/healthz", timeout=timeout) as r:
            body = json.loads(r.read(4096))
        if isinstance(body, dict) and body.get("ok") is True:
            return "a facecast server is already running there"
    except Exception:
        pass
    return "another program is using it"


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    quiet_libraries(args.log_level)
    try:
        config = load_config(args.config)
        if args.avatar:
            avatar = resolve_cli_avatar(args.avatar)
            why = check_avatar(avatar)
            if why:
                return fail(why)
            config = replace(config, render={"avatar": str(avatar)})
        if args.cluster is not None:
            config = replace(config, cluster={"address": args.cluster})
        avatar = config.resolve_path(config.render.avatar)
        why = check_avatar(avatar)
        if why:
            return fail(f"{why} (render.avatar in the config)")
    except ConfigError as e:
        return fail(f"bad configuration: {e}")
    host = args.host or config.server.host
    port = config.server.port if args.port is None else args.port
    if not 0 <= port <= 65535:
        return fail(f"--port {port} is not a port number (0-65535)")
    try:
        sock = bind(host, port)
    except socket.gaierror as e:
        return fail(f"cannot listen on {host!r}: {e.strerror or e} (check --host / server.host)")
    except OSError as e:
        import errno
        if e.errno == errno.EADDRINUSE:
            return fail(f"port {port} on {host} is already in use: {port_owner(host, port)} "
                        f"(stop it, or choose another with --port)")
        if e.errno == errno.EACCES:
            return fail(f"no permission to listen on port {port} (ports below 1024 need root; use --port 8080)")
        return fail(f"cannot listen on {host}:{port}: {e.strerror or e}")

    from aiohttp import web

    from engine.server import create_app, security_warnings
    port = sock.getsockname()[1]
    if config.cluster.address:
        try:
            app = cluster_app(config)
        except ClusterUnreachable as e:
            sock.close()
            return fail(str(e))
        if app is None:
            sock.close()
            return fail("--cluster needs Ray: pip install 'facecast[cluster]' (docs/deploy.md)")
    else:
        app = create_app(config)
    print(f"facecast: serving {avatar.name} at http://{host}:{port}/  (metrics: /metrics)", flush=True)
    for warning in security_warnings(config, host):
        logging.getLogger("facecast.security").warning(warning)
    try:
        web.run_app(app, sock=sock, print=None)
    except KeyboardInterrupt:
        pass
    return 0


def cluster_app(config):
    """The cluster front door's app (engine/cluster/), or None when Ray is not installed."""
    import importlib.util
    if importlib.util.find_spec("ray") is None:
        return None
    from engine.cluster.app import create_cluster_app
    from engine.cluster.frontdoor import FrontDoor
    frontdoor = FrontDoor(config)
    try:
        frontdoor.connect()
    except Exception as e:   # unreachable address, version mismatch, ...
        raise ClusterUnreachable(f"cannot join the Ray cluster at {config.cluster.address!r}: "
                                 f"{type(e).__name__}: {str(e)[:300]}") from None
    print(f"facecast: placing sessions on the Ray cluster at {config.cluster.address}", flush=True)
    return create_cluster_app(config, frontdoor)


class ClusterUnreachable(RuntimeError):
    """--cluster names a Ray cluster this process cannot join."""
