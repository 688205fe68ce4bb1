"""``facecast serve``: the WebRTC + WebSocket server for the default (or a given) avatar."""
from __future__ import annotations

import argparse
import logging

from engine.config import load_config, replace


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=None, help="listen address (default: server.host)")
    parser.add_argument("--port", type=int, default=None, help="listen port (default: server.port)")
    parser.add_argument("--avatar", default=None, help="avatar file (default: render.avatar)")
    parser.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))


def run(args: argparse.Namespace) -> int:
    from aiohttp import web

    from engine.server import create_app

    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = load_config(args.config)
    if args.avatar:
        config = replace(config, render={"avatar": args.avatar})
    avatar = config.resolve_path(config.render.avatar)
    if not avatar.is_file():
        print(f"facecast serve: avatar file {avatar} does not exist (create one with `facecast avatar create`)")
        return 2
    host = args.host or config.server.host
    port = config.server.port if args.port is None else args.port
    print(f"facecast: serving {avatar.name} at http://{host}:{port}/  (metrics: /metrics)", flush=True)
    from engine.server import security_warnings
    for warning in security_warnings(config, host):
        logging.getLogger("facecast.security").warning(warning)
    web.run_app(create_app(config), host=host, port=port, print=None)
    return 0
