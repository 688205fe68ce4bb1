"""Command line: stream a wav (or text) into a facecast session and print its events.

    python -m facecast_client stream speech.wav --url ws://127.0.0.1:8080/v1/ws
    python -m facecast_client speak "Hello there" --url ws://127.0.0.1:8080/v1/ws

(installed with the project; from a bare checkout: ``PYTHONPATH=clients/python``; elsewhere:
``pip install clients/python``.)
Each event is printed as one JSON line with ``t`` = seconds since the session was ready.
Open http://HOST:PORT/ and watch with the printed session id, or POST /v1/offer with it.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from facecast_client.client import FacecastClient, FacecastError, load_wav_pcm16

DEFAULT_URL = "ws://127.0.0.1:8080/v1/ws"


def _printer(t0: float):
    def show(event: dict) -> None:
        out = {k: v for k, v in event.items() if k != "_t"}
        out["t"] = round(max(0.0, event.get("_t", time.monotonic()) - t0), 3)
        print(json.dumps(out), flush=True)
    return show


async def _print_until_finished(client: FacecastClient, show, timeout: float) -> int:
    """Print events until the last segment finished (or ``timeout`` passes)."""
    try:
        async with asyncio.timeout(timeout):
            async for event in client.events():
                show(event)
                if event["type"] == "playback.finished":
                    return 0
                if event["type"] == "error" and event.get("fatal"):
                    return 1
    except TimeoutError:
        print(json.dumps({"type": "client.timeout", "after_s": timeout}), flush=True)
        return 1
    return 1


async def _stream(args) -> int:
    pcm, rate = load_wav_pcm16(args.wav)
    duration = len(pcm) / 2 / rate
    client = await FacecastClient.connect(args.url, sample_rate=rate, avatar=args.avatar, session_id=args.session,
                                          token=args.token)
    t0 = time.monotonic()
    show = _printer(t0)
    show(client.ready)
    print(json.dumps({"type": "client.info", "wav_s": round(duration, 3), "sample_rate": rate,
                      "watch": f"POST /v1/offer with session_id={client.session_id}"}), flush=True)
    printer = asyncio.create_task(_print_until_finished(client, show, duration + args.timeout))
    try:
        sender = asyncio.create_task(client.stream_pcm(pcm, chunk_ms=args.chunk_ms, realtime=not args.fast))
        if args.interrupt_after is not None:
            await asyncio.sleep(args.interrupt_after)
            sender.cancel()
            await client.interrupt()
            print(json.dumps({"type": "client.interrupt", "t": round(time.monotonic() - t0, 3)}), flush=True)
        else:
            await sender
            await client.end_segment()
        return await printer
    finally:
        printer.cancel()
        await client.close()


async def _speak(args) -> int:
    client = await FacecastClient.connect(args.url, avatar=args.avatar, session_id=args.session, token=args.token)
    show = _printer(time.monotonic())
    show(client.ready)
    try:
        await client.speak(args.text, voice=args.voice)
        return await _print_until_finished(client, show, args.timeout)
    finally:
        await client.close()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m facecast_client", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=DEFAULT_URL, help=f"WebSocket URL (default {DEFAULT_URL})")
    common.add_argument("--avatar", default=None, help="avatar name/path the server accepts (default: its default)")
    common.add_argument("--token", default=None,
                        help="the server's bearer token (default: $FACECAST_TOKEN; see docs/security.md)")
    common.add_argument("--session", default=None, help="attach to this existing session id instead of creating one")
    common.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for playback to finish")
    s = sub.add_parser("stream", parents=[common], help="stream a wav in real time, print events")
    s.add_argument("wav")
    s.add_argument("--chunk-ms", type=int, default=20, help="PCM per binary message (default 20 ms)")
    s.add_argument("--fast", action="store_true", help="send as fast as possible instead of in real time")
    s.add_argument("--interrupt-after", type=float, default=None, metavar="S",
                   help="stop sending and interrupt after S seconds")
    k = sub.add_parser("speak", parents=[common], help="make the avatar say TEXT (server-side TTS)")
    k.add_argument("text")
    k.add_argument("--voice", default=None, help="espeak-ng voice, e.g. en-us, en-gb")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return asyncio.run(_stream(args) if args.command == "stream" else _speak(args))
    except FacecastError as e:
        print(f"facecast: {e}", file=sys.stderr)
        return 1
    except (OSError, ValueError, asyncio.TimeoutError) as e:
        print(f"facecast: {type(e).__name__ if not str(e) else ''}{e}", file=sys.stderr)
        return 1
    except Exception as e:   # websockets' handshake errors (HTTP 401/403/404, bad URI): one line
        if type(e).__module__.startswith("websockets"):
            print(f"facecast: could not open the WebSocket: {e}", file=sys.stderr)
            return 1
        raise
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
