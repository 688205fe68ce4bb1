"""``facecast doctor``: check that this machine and config can serve, one line per check.

    facecast [--config C] doctor [--host H] [--port P] [--avatar A.avatar] [--timeout S]

Checks: the config loads; the port is free (or a facecast server answers /healthz there); each
``webrtc.ice_servers`` entry answers (stun: a STUN binding request over UDP; turn:/turns: a TURN
allocation with the configured credentials, over the URL's transport); the video codecs of
``video.codecs`` exist in aiortc and PyAV; espeak-ng speaks; the avatar loads; the motion model
loads (and which backend). Each line: ``OK`` or ``FAIL``, what was checked, and for a failure
what to do. Exit status 0 when everything passed, 1 otherwise.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import time
from typing import Callable

from engine.config import Config, ConfigError, load_config, replace


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=None, help="address serve will listen on (default: server.host)")
    parser.add_argument("--port", type=int, default=None, help="port serve will listen on (default: server.port)")
    parser.add_argument("--avatar", default=None, help="avatar file to check, relative to the current directory "
                                                       "(default: render.avatar)")
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for each STUN/TURN server")


class Report:
    def __init__(self) -> None:
        self.failed = 0

    def line(self, ok: bool, what: str, detail: str, fix: str = "") -> None:
        if not ok:
            self.failed += 1
        text = f"{'OK  ' if ok else 'FAIL'}  {what:<10} {detail}"
        if fix and not ok:
            text += f" -> {fix}"
        print(text, flush=True)


# ---- network ---------------------------------------------------------------------------------------
def check_port(host: str, port: int, timeout: float = 1.0) -> tuple[bool, str, str]:
    from engine.commands.serve import bind, port_owner
    try:
        sock = bind(host, port)
    except OSError as e:
        import errno
        if e.errno == errno.EADDRINUSE:
            owner = port_owner(host, port, timeout)
            if owner.startswith("a facecast server"):
                return True, f"{host}:{port}: {owner} (/healthz answers)", ""
            return False, f"{host}:{port} is in use: {owner}", "stop that program, or serve with --port N"
        return False, f"cannot listen on {host}:{port}: {e.strerror or e}", "check --host / server.host and --port"
    sock.close()
    return True, f"{host}:{port} is free", ""


async def stun_binding(host: str, port: int, timeout: float) -> tuple[str, int]:
    """Our address as a STUN server at host:port sees it (one binding request over UDP,
    retransmitted every 0.5 s until ``timeout``)."""
    from aioice import stun
    loop = asyncio.get_running_loop()
    got: asyncio.Future = loop.create_future()
    request = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)

    class Proto(asyncio.DatagramProtocol):
        def datagram_received(self, data, addr):
            try:
                msg = stun.parse_message(data)
            except ValueError:
                return
            if msg.transaction_id == request.transaction_id and not got.done():
                got.set_result(msg)

        def error_received(self, exc):
            if not got.done():
                got.set_exception(exc)

    transport, _ = await loop.create_datagram_endpoint(Proto, remote_addr=(host, port))
    try:
        deadline = loop.time() + timeout
        while True:
            transport.sendto(bytes(request))
            left = deadline - loop.time()
            if left <= 0:
                raise asyncio.TimeoutError
            try:
                msg = await asyncio.wait_for(asyncio.shield(got), min(0.5, left))
                break
            except asyncio.TimeoutError:
                if loop.time() >= deadline:
                    raise
    finally:
        transport.close()
    if msg.message_class != stun.Class.RESPONSE:
        raise ConnectionError(f"STUN error response {msg.attributes.get('ERROR-CODE')}")
    return msg.attributes.get("XOR-MAPPED-ADDRESS") or msg.attributes.get("MAPPED-ADDRESS")


async def turn_allocate(host: str, port: int, username: str, password: str, transport: str, ssl: bool,
                        timeout: float) -> tuple[str, int]:
    """The relayed address a TURN allocation with these credentials gets (then released)."""
    from aioice.turn import create_turn_endpoint
    turn_transport, _ = await asyncio.wait_for(
        create_turn_endpoint(asyncio.DatagramProtocol, (host, port), username, password,
                             ssl=ssl or None, transport=transport), timeout)
    try:
        return turn_transport.get_extra_info("sockname")
    finally:
        turn_transport.close()


def ice_urls(config: Config) -> list[tuple[str, dict]]:
    out = []
    for server in config.webrtc.ice_servers:
        urls = server["urls"] if isinstance(server["urls"], list) else [server["urls"]]
        out.extend((u, server) for u in urls)
    return out


async def check_ice(url: str, server: dict, timeout: float) -> tuple[bool, str, str]:
    from aiortc.rtcicetransport import parse_stun_turn_uri
    try:
        parsed = parse_stun_turn_uri(url)
    except ValueError as e:
        return False, f"{url}: {e}", "write it as stun:HOST:PORT or turn:HOST:PORT[?transport=tcp]"
    host, port = parsed["host"], parsed["port"]
    try:
        if parsed["scheme"] == "stun":
            mapped = await stun_binding(host, port, timeout)
            return True, f"{url} answers a STUN binding (sees us as {mapped[0]}:{mapped[1]})", ""
        relayed = await turn_allocate(host, port, server.get("username"), server.get("credential"),
                                      parsed["transport"], parsed["scheme"] == "turns", timeout)
        return True, f"{url} allocated a relay ({relayed[0]}:{relayed[1]}) with the configured credentials", ""
    except asyncio.TimeoutError:
        return False, f"{url} did not answer within {timeout:g} s", \
            "check the address and port, that the server runs, and that the firewall lets it through"
    except ConnectionRefusedError:
        return False, f"{url}: nothing listens there (connection refused)", \
            "check the address and port, and that the server runs"
    except Exception as e:   # aioice raises TransactionFailed for a 401, ConnectionError, OSError
        text = str(e) or type(e).__name__
        fix = ("check webrtc.ice_servers username / credential and the TURN server's realm/users"
               if "401" in text or "Unauthorized" in text else "check the server address and that it runs")
        return False, f"{url}: {text}", fix


# ---- media and models --------------------------------------------------------------------------------
def check_codecs(config: Config) -> tuple[bool, str, str]:
    import av
    from aiortc import RTCRtpSender
    rtc = {c.mimeType.split("/")[1].upper() for c in RTCRtpSender.getCapabilities("video").codecs}
    encoders = {"VP8": ("libvpx",), "H264": ("libx264", "h264")}
    have, missing = [], []
    for name in (c.upper() for c in config.video.codecs):
        ok_av = False
        for enc in encoders.get(name, ()):
            try:
                av.codec.Codec(enc, "w")
                ok_av = True
                break
            except Exception:
                continue
        (have if name in rtc and ok_av else missing).append(name)
    if not have:
        return False, f"no usable video codec among video.codecs {config.video.codecs}", \
            "reinstall aiortc/av wheels (they bundle libvpx and libx264)"
    if missing:
        return False, f"available: {', '.join(have)}; missing: {', '.join(missing)}", \
            "remove the missing ones from video.codecs, or install an av build with them"
    return True, f"video {', '.join(have)} (aiortc + PyAV encoders)", ""


def check_espeak(config: Config) -> tuple[bool, str, str]:
    from engine.audio.tts import Speaker, TTSError
    speaker = Speaker(config.tts)
    if speaker.binary is None:
        return False, "espeak-ng is not installed (needed by `speak` and `render --text`)", \
            "apt-get install espeak-ng (facecast.sh installs it as root)"
    try:
        audio = speaker.synthesize("Ready.")
    except TTSError as e:
        return False, f"espeak-ng failed: {e}", f"check tts.voice = {config.tts.voice!r} (espeak-ng --voices)"
    return True, f"espeak-ng speaks with voice {config.tts.voice} ({len(audio) / 16000:.2f} s for 'Ready.')", ""


def check_avatar(config: Config) -> tuple[bool, str, str]:
    from engine.avatar.asset import AvatarError, load_avatar
    path = config.resolve_path(config.render.avatar)
    try:
        avatar = load_avatar(path)
    except AvatarError as e:
        return False, str(e), "make one with `facecast avatar create PHOTO -o NAME.avatar`, then --avatar NAME.avatar"
    h, w = avatar.image.shape[:2]
    return True, f"{path.name} loads ({w}x{h})", ""


def check_model(config: Config) -> tuple[bool, str, str]:
    from engine.motion.generators import create_generator
    records: list[logging.LogRecord] = []

    class Catch(logging.Handler):
        def emit(self, record):
            records.append(record)

    handler = Catch(logging.WARNING)
    root = logging.getLogger()
    root.addHandler(handler)
    t0 = time.perf_counter()
    try:
        gen = create_generator(config)
    except Exception as e:
        return False, f"motion generator failed: {type(e).__name__}: {e}", "check motion.model_path and motion.backends"
    finally:
        root.removeHandler(handler)
    dt = time.perf_counter() - t0
    name = type(gen).__name__
    backend = getattr(gen, "backend", None) or getattr(getattr(gen, "runtime", None), "name", None)
    fell_back = [r.getMessage() for r in records if "baseline" in r.getMessage()]
    if config.motion.source == "model" and fell_back:
        return False, f"the model did not load: {fell_back[0]}", \
            "check motion.model_path (assets/audio2motion*.onnx|pt) and motion.backends"
    what = f"{name}" + (f" on {backend}" if isinstance(backend, str) else "")
    return True, f"motion source {config.motion.source}: {what} loaded in {dt:.1f} s", ""


# ---- main ----------------------------------------------------------------------------------------
def run(args: argparse.Namespace) -> int:
    from engine.commands.serve import quiet_libraries, resolve_cli_avatar
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    quiet_libraries("INFO")
    logging.getLogger("aioice").setLevel(logging.CRITICAL)
    report = Report()
    try:
        config = load_config(args.config)
        if args.avatar:
            config = replace(config, render={"avatar": str(resolve_cli_avatar(args.avatar))})
    except ConfigError as e:
        report.line(False, "config", str(e), "fix the key named above (configs/default.toml lists every key)")
        return 1
    report.line(True, "config", f"{args.config or 'configs/default.toml'} is valid")
    host = args.host or config.server.host
    port = config.server.port if args.port is None else args.port
    report.line(*_guard(lambda: check_port(host, port), "port"))

    urls = ice_urls(config)
    if not urls:
        report.line(True, "ice", "no STUN/TURN servers configured (webrtc.ice_servers): fine on one machine or a LAN")
    for url, server in urls:
        ok, detail, fix = asyncio.run(check_ice(url, server, args.timeout))
        report.line(ok, "stun" if url.startswith("stun") else "turn", detail, fix)
    if config.webrtc.ice_transport_policy == "relay":
        report.line(any(u.startswith("turn") for u, _ in urls), "ice",
                    'ice_transport_policy = "relay": media goes through the TURN server only')

    for what, check in (("codecs", check_codecs), ("espeak-ng", check_espeak), ("avatar", check_avatar),
                        ("model", check_model)):
        report.line(*_guard(lambda check=check: check(config), what))
    print(("all checks passed" if not report.failed else f"{report.failed} check(s) failed"), flush=True)
    return 0 if not report.failed else 1


def _guard(check: Callable[[], tuple[bool, str, str]], what: str) -> tuple[bool, str, str, str]:
    try:
        ok, detail, fix = check()
    except Exception as e:
        ok, detail, fix = False, f"{type(e).__name__}: {e}", "run with the failing piece alone to see more"
    return ok, what, detail, fix
