"""``facecast livekit-avatar``: the LiveKit avatar dispatcher (engine/integrations/livekit).

Agents' ``AvatarSession.start`` POST ``/launch`` here; each launch sends one facecast avatar
worker into the agent's LiveKit room. Needs the extra: ``pip install -e ".[livekit]"``.
"""
from __future__ import annotations

import argparse
import logging
import socket
import sys

from engine.commands.serve import bind, check_avatar, quiet_libraries, resolve_cli_avatar
from engine.config import ConfigError, load_config, replace


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=None, help="listen address (default: livekit.dispatcher_host)")
    parser.add_argument("--port", type=int, default=None, help="listen port (default: livekit.dispatcher_port)")
    parser.add_argument("--avatar", default=None, help="avatar file the workers show (default: render.avatar)")
    parser.add_argument("--max-workers", type=int, default=None, help="avatar workers at once (default: livekit.max_workers)")
    parser.add_argument("--log-level", default="INFO", type=str.upper, choices=("DEBUG", "INFO", "WARNING", "ERROR"))


def fail(message: str, code: int = 2) -> int:
    print(f"facecast livekit-avatar: {message}", file=sys.stderr, flush=True)
    return code


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    quiet_libraries(args.log_level)
    try:
        import livekit.agents  # noqa: F401
    except ImportError:
        return fail('the LiveKit extra is not installed: pip install -e ".[livekit]"')
    try:
        config = load_config(args.config)
        if args.avatar:
            avatar = resolve_cli_avatar(args.avatar)
            if why := check_avatar(avatar):
                return fail(why)
            config = replace(config, render={"avatar": str(avatar)})
        if args.max_workers is not None:
            config = replace(config, livekit={"max_workers": args.max_workers})
        if why := check_avatar(config.resolve_path(config.render.avatar)):
            return fail(f"{why} (render.avatar in the config)")
    except ConfigError as e:
        return fail(f"bad configuration: {e}")
    host = args.host or config.livekit.dispatcher_host
    port = config.livekit.dispatcher_port if args.port is None else args.port
    try:
        sock = bind(host, port)
    except (OSError, socket.gaierror) as e:
        return fail(f"cannot listen on {host}:{port}: {e.strerror or e}")

    from aiohttp import web

    from engine.integrations.livekit.dispatcher import create_dispatcher_app
    from engine.server import server_token
    print(f"facecast livekit-avatar: dispatcher at http://{host}:{sock.getsockname()[1]}/launch "
          f"(up to {config.livekit.max_workers} avatar workers)", flush=True)
    web.run_app(create_dispatcher_app(config, token=server_token(config)), sock=sock, print=None)
    return 0
