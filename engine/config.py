"""Typed, validated configuration loaded from ``configs/*.toml``.

Every section is a frozen dataclass; ``load_config`` merges a TOML file (and
optional overrides) over the defaults, checks types, ranges and unknown keys,
and raises ``ConfigError`` naming the offending key.

Each field may carry ``metadata={"min": .., "max": .., "choices": (..)}``.
"""
from __future__ import annotations

import dataclasses
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.audio import MODEL_RATE, OUTPUT_RATE

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = REPO_ROOT / "configs"
ASSETS_DIR = REPO_ROOT / "assets"


class ConfigError(ValueError):
    """A configuration value that is missing, of the wrong type or out of range."""


def _f(default: Any, *, min: float | None = None, max: float | None = None,
       choices: tuple | None = None, doc: str = "") -> Any:
    md = {"min": min, "max": max, "choices": choices, "doc": doc}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata=md)
    return field(default=default, metadata=md)


@dataclass(frozen=True)
class VideoConfig:
    width: int = _f(512, min=64, max=4096)
    height: int = _f(512, min=64, max=4096)
    fps: int = _f(25, min=1, max=120)
    codecs: list = _f(["VP8", "H264"], doc="preferred WebRTC video codecs, in order")
    bitrate_kbps: int = _f(1200, min=100, max=20000)


@dataclass(frozen=True)
class AudioConfig:
    model_sample_rate: int = _f(MODEL_RATE, choices=(MODEL_RATE,), doc="rate the motion model consumes")
    output_sample_rate: int = _f(OUTPUT_RATE, choices=(OUTPUT_RATE,), doc="rate sent over WebRTC (Opus)")
    input_sample_rates: list = _f([MODEL_RATE, 24000, OUTPUT_RATE], doc="accepted assistant PCM rates")
    vad_threshold_db: float = _f(-45.0, min=-90.0, max=0.0)
    vad_hangover_ms: int = _f(300, min=0, max=5000)
    vad_min_speech_ms: int = _f(40, min=0, max=2000, doc="voiced time before voice activity starts")


@dataclass(frozen=True)
class PipelineConfig:
    max_buffered_speech_s: float = _f(120.0, min=1.0, max=3600.0)
    deadline_slack_ms: float = _f(20.0, min=0.0, max=1000.0)
    torch_threads: int = _f(1, min=1, max=64, doc="intra-op threads per stage on the real-time path")
    render_threads: int = _f(1, min=1, max=64)
    shared_speech_workers: int = _f(0, min=0, max=64,
                                    doc="0: a speech thread per session; N: all sessions of the process share N")
    render_lead_ms: float = _f(30.0, min=0.0, max=1000.0, doc="frames are prepared this long before they are due")
    speech_fade_in_ms: float = _f(80.0, min=0.0, max=2000.0)
    speech_fade_out_ms: float = _f(120.0, min=0.0, max=2000.0)
    interrupt_fade_ms: float = _f(60.0, min=0.0, max=150.0, doc="lips stop within this after interrupt()")
    echo_preroll_ms: float = _f(100.0, min=0.0, max=1000.0, doc="mic audio kept before voice onset (echo mode)")
    output_queue_frames: int = _f(4, min=1, max=1000, doc="frames buffered per live output consumer")
    max_lag_frames: int = _f(6, min=1, max=10000, doc="a live clock this far behind skips ahead")
    jitter_margin_ms: float = _f(20.0, min=0.0, max=1000.0,
                                 doc="a live segment starts this long after its first frame is ready")
    max_repeats_when_late: int = _f(3, min=1, max=25,
                                    doc="repeats in a row allowed once a frame is already past its deadline")
    max_queued_segments: int = _f(64, min=1, max=100000,
                                  doc="speech segments queued but not played yet, per session (more: refused)")


@dataclass(frozen=True)
class MotionConfig:
    source: str = _f("model", choices=("model", "baseline"), doc="audio-to-motion generator")
    backends: list = _f(["tensorrt", "onnxruntime", "torch"], doc="ordered backend fallback")
    model_path: str = _f("assets/audio2motion.onnx")
    lookahead_ms: int = _f(100, min=0, max=400)
    diffusion_steps: int = _f(2, min=1, max=50)
    seed: int = _f(0, min=0)
    head_motion_scale: float = _f(1.0, min=0.0, max=3.0)
    blink_rate_per_min: float = _f(17.0, min=0.0, max=120.0)
    emotion: str = _f("neutral", choices=("neutral", "happy", "sad", "angry", "surprised"))
    emotion_intensity: float = _f(0.0, min=0.0, max=1.0)
    onnx_precision: str = _f("int8", choices=("int8", "fp32"), doc="onnxruntime export to run (falls back to the other)")
    torch_dtype: str = _f("float16", choices=("float16", "bfloat16", "float32"), doc="torch backend dtype on CUDA (CPU: float32)")
    tensorrt_precision: str = _f("fp16", choices=("fp16", "int8", "fp32"))
    engine_cache_dir: str = _f("~/.cache/facecast/tensorrt", doc="where built TensorRT engines are cached")
    frames_per_call: int = _f(1, min=1, max=5, doc="new frames per model call (1: per frame, chunking-invariant)")
    batch_sessions: bool = _f(True, doc="the process's sessions share one model; concurrent calls run as one batch")
    max_batch: int = _f(32, min=1, max=1024, doc="most sessions' calls in one batched model run")
    silence_gate: bool = _f(True, doc="close the lips in pauses of speech (engine.motion.silence)")
    silence_back_ms: float = _f(40.0, min=0.0, max=1000.0, doc="a pause frame has this much silence before its instant")
    silence_ahead_ms: float = _f(60.0, min=0.0, max=400.0, doc="... and this much after it (capped by the look-ahead)")
    silence_threshold: float = _f(0.3, min=0.0, max=1.0, doc="silent below floor + this share of (speech level - floor)")
    silence_close_frames: int = _f(1, min=1, max=25, doc="frames the lips take to close once a pause is found (reopen at once)")


@dataclass(frozen=True)
class RenderConfig:
    renderer: str = _f("warp", choices=("warp", "splat"), doc="warp: 2.5D photo warp; splat: 3D Gaussians")
    backend: str = _f("auto", choices=("auto", "numpy", "cpu", "triton"),
                      doc="kernel path: reference numpy, cpu (numba/OpenCV), triton (GPU)")
    avatar: str = _f("assets/default.avatar")
    seam_jump: float = _f(3.0, min=0.0, max=100.0,
                          doc="anti-alias pixels whose source jumps more than this many output "
                              "pixels' worth (layer edges, folds); 0 = off")
    splat_backend: str = _f("auto", choices=("auto", "cpu", "torch", "gsplat"),
                            doc="splat rasterizer: cpu (numba), torch (reference), gsplat (CUDA); auto: gsplat with a GPU")
    splat_gaussians: int = _f(20000, min=100, max=2_000_000,
                              doc="Gaussians initialised from the mesh when the avatar file holds none")
    splat_camera_distance: float = _f(20.0, min=2.0, max=1000.0, doc="splat camera distance, face units (IOD)")
    splat_stereo: bool = _f(False, doc="two eyes side by side (each half the video width)")
    splat_ipd_mm: float = _f(63.0, min=0.0, max=200.0, doc="stereo eye separation (mm; a face unit is 63 mm)")


@dataclass(frozen=True)
class AvatarConfig:
    size: int = _f(512, min=128, max=2048, doc="side of the square avatar image (pixels)")
    min_image_side: int = _f(96, min=32, max=1024, doc="smaller photos are refused")
    max_image_side: int = _f(2048, min=256, max=8192, doc="larger photos are downscaled first")
    min_face_pixels: float = _f(24.0, min=4.0, doc="smallest inter-ocular distance accepted")
    crop_face_heights: float = _f(2.6, min=1.2, max=10.0, doc="crop side in face heights")


ICE_URL_SCHEMES = ("stun:", "turn:", "turns:")


@dataclass(frozen=True)
class WebRTCConfig:
    ice_servers: list = _f([], doc='e.g. [{urls = "stun:stun.l.google.com:19302"}, '
                                   '{urls = "turn:turn.example.com:3478", username = "u", credential = "p"}]')
    ice_transport_policy: str = _f("all", choices=("all", "relay"),
                                   doc='"relay": the server only uses TURN relay candidates (needs a turn: server)')
    peer_timeout_s: float = _f(6.0, min=1.0, max=600.0, doc="no RTCP from a connected peer this long: it is gone")
    connect_timeout_s: float = _f(15.0, min=0.1, max=600.0,
                                  doc="a peer not connected this long after its offer is closed (and its session)")

    def __post_init__(self) -> None:
        for s in self.ice_servers:
            if not isinstance(s, dict) or "urls" not in s:
                raise ConfigError(f"webrtc.ice_servers: each entry needs 'urls', got {s!r}")
            unknown = set(s) - {"urls", "username", "credential"}
            if unknown:
                raise ConfigError(f"webrtc.ice_servers: unknown key(s) {sorted(unknown)} in {s!r}")
            urls = s["urls"] if isinstance(s["urls"], list) else [s["urls"]]
            for url in urls:
                if not isinstance(url, str) or not url.startswith(ICE_URL_SCHEMES):
                    raise ConfigError(f"webrtc.ice_servers: {url!r} is not a stun:, turn: or turns: URL")
                if url.startswith(("turn:", "turns:")) and not (isinstance(s.get("username"), str)
                                                                 and isinstance(s.get("credential"), str)):
                    raise ConfigError(f"webrtc.ice_servers: {url} needs 'username' and 'credential' strings")
        if self.ice_transport_policy == "relay" and not any(
                str(u).startswith(("turn:", "turns:")) for s in self.ice_servers
                for u in (s["urls"] if isinstance(s["urls"], list) else [s["urls"]])):
            raise ConfigError('webrtc.ice_transport_policy = "relay" needs a turn: server in webrtc.ice_servers')


@dataclass(frozen=True)
class ServerConfig:
    host: str = _f("127.0.0.1")
    port: int = _f(8080, min=0, max=65535)
    max_sessions: int = _f(8, min=1, max=1000)
    max_ws_message_bytes: int = _f(1 << 20, min=1024, max=1 << 30)
    max_offer_bytes: int = _f(256 * 1024, min=1024, max=16 << 20, doc="largest POST /v1/offer body")
    max_viewers_per_session: int = _f(4, min=1, max=1000, doc="WebRTC peers per session")
    max_sockets_per_session: int = _f(4, min=1, max=1000, doc="WebSockets driving one session")
    allowed_origins: list = _f([], doc='browser Origins allowed besides same-origin and loopback; "*" = any')
    token: str = _f("", doc="bearer token for /v1/offer, /v1/ws, /metrics (env FACECAST_TOKEN); empty = none")
    avatar_dir: str = _f("assets", doc="clients may name any .avatar file in this folder (session.create, offer)")
    max_connections_per_ip: int = _f(8, min=0, max=100000,
                                     doc="WebSockets + WebRTC peers one client IP may hold at once (0 = no cap)")
    rate_limit_requests: int = _f(10, min=0, max=100000,
                                  doc="offers + new WebSockets per IP per rate_limit_window_s (token bucket; 0 = off)")
    rate_limit_window_s: float = _f(10.0, min=0.1, max=86400.0, doc="the token bucket refills this many requests in this long")

    def __post_init__(self) -> None:
        for o in self.allowed_origins:
            if not isinstance(o, str) or not (o == "*" or ("://" in o and not o.endswith("/"))):
                raise ConfigError(f"server.allowed_origins: {o!r} is not an origin like "
                                  '"https://example.com" (scheme://host[:port], no path) or "*"')
        if self.token and (len(self.token) < 8 or any(c.isspace() for c in self.token)):
            raise ConfigError("server.token: use at least 8 characters and no whitespace")


@dataclass(frozen=True)
class TTSConfig:
    engine: str = _f("espeak-ng", choices=("espeak-ng",))
    voice: str = _f("en-us")
    rate_wpm: int = _f(165, min=60, max=450)
    max_pending_per_socket: int = _f(8, min=1, max=1000, doc="`speak` requests waiting per WebSocket")
    max_concurrent_per_session: int = _f(1, min=1, max=64, doc="syntheses running at once per session")
    max_concurrent: int = _f(4, min=1, max=256, doc="syntheses running at once per server")


@dataclass(frozen=True)
class WebcamConfig:
    """Webcam retargeting: face mesh → rig fit → one-euro filter (docs/retargeting.md)."""
    min_detection_confidence: float = _f(0.5, min=0.0, max=1.0)
    min_tracking_confidence: float = _f(0.5, min=0.0, max=1.0)
    calibration_s: float = _f(1.0, min=0.0, max=4.0, doc="first seconds of tracking (at most 120 frames) = the person's neutral")
    zero_pose_at_calibration: bool = _f(True, doc="head pose relative to the pose held while calibrating")
    fit_ridge: float = _f(0.002, min=1e-6, max=10.0, doc="L2 penalty on blendshape weights (> 0: some shapes are collinear)")
    fit_sparsity: float = _f(0.002, min=0.0, max=10.0, doc="L1 penalty on blendshape weights")
    fit_sparsity_secondary: float = _f(0.05, min=0.0, max=10.0, doc="L1 penalty on the non-primary shapes")
    fit_iterations: int = _f(12, min=1, max=200, doc="projected-Newton iterations of the bounded fit")
    eye_weight: float = _f(4.0, min=0.0, max=100.0, doc="extra weight of eyelid/iris points in the fit")
    fit_exclude: list = _f(["tongueOut"], doc="ARKit shapes the fit never uses (not visible in landmarks)")
    depth_weight: float = _f(0.2, min=0.0, max=1.0, doc="weight of landmark depth (z) vs x, y in the fit")
    rigid_max_motion: float = _f(0.01, min=0.0, max=1.0, doc="head pose is aligned on points no shape moves more")
    rigid_min_points: int = _f(16, min=4, max=468, doc="at least this many (the least-moving) alignment points")
    fit_primary: list = _f(
        ["jawOpen", "eyeBlinkLeft", "eyeBlinkRight", "eyeWideLeft", "eyeWideRight",
        "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft",
        "eyeLookDownRight", "eyeLookInRight", "eyeLookOutRight", "eyeLookUpRight",
        "mouthSmileLeft", "mouthSmileRight", "mouthFunnel", "mouthPucker", "jawLeft", "jawRight",
        "browInnerUp", "browDownLeft", "browDownRight", "browOuterUpLeft", "browOuterUpRight"],
        doc="shapes fitted first; the others then fit what these leave (see rig_fit.py)")
    tracker_gain: dict = _f(
        {"jawOpen": 0.8, "eyeBlinkLeft": 0.6, "eyeBlinkRight": 0.6, "mouthSmileLeft": 0.7,
         "mouthSmileRight": 0.7, "browInnerUp": 0.5, "browOuterUpLeft": 0.5, "browOuterUpRight": 0.5},
        doc="fraction of a rig shape's motion the face mesh reports (it under-reacts); docs/retargeting.md")
    shape_filter_min_cutoff: float = _f(2.0, min=0.01, max=100.0, doc="one-euro min cutoff (Hz), blendshapes")
    shape_filter_beta: float = _f(2.0, min=0.0, max=1000.0, doc="one-euro beta, blendshapes")
    pose_filter_min_cutoff: float = _f(1.0, min=0.01, max=100.0, doc="one-euro min cutoff (Hz), head pose")
    pose_filter_beta: float = _f(1.0, min=0.0, max=1000.0, doc="one-euro beta, head pose")
    filter_d_cutoff: float = _f(1.0, min=0.01, max=100.0, doc="one-euro cutoff of the speed estimate (Hz)")
    lost_face_hold_s: float = _f(0.5, min=0.0, max=60.0, doc="hold the last motion this long when the face is lost")
    lost_face_ease_s: float = _f(1.0, min=0.0, max=60.0, doc="then ease back to neutral over this long")
    max_yaw_deg: float = _f(25.0, min=0.0, max=90.0, doc="head yaw shown is clamped to +-this (the warp smears past it)")
    max_pitch_deg: float = _f(15.0, min=0.0, max=90.0, doc="head pitch shown is clamped to +-this")
    max_roll_deg: float = _f(20.0, min=0.0, max=90.0, doc="head roll shown is clamped to +-this")
    mirror: bool = _f(False, doc="the avatar moves as the user's mirror image (left/right shapes, yaw, roll swapped)")



@dataclass(frozen=True)
class ClusterConfig:
    """Sessions on a Ray cluster (engine/cluster/, docs/deploy.md "Ray cluster"); off when ``address`` is ""."""
    address: str = _f("", doc='"" = one box (no Ray); "auto" = the local Ray (started if none runs); '
                              '"ray://host:10001" or "host:6379" = a Ray cluster')
    namespace: str = _f("facecast", doc="Ray namespace of the session actors")
    node_resource: str = _f("facecast_worker", doc="only nodes advertising this custom Ray resource host "
                                                   'sessions ("" = any node with the resources)')
    session_resources: dict = _f(
        {"warp.assistant": {"CPU": 1.0}, "warp.echo": {"CPU": 1.0}, "warp.webcam": {"CPU": 1.5},
         "splat": {"CPU": 1.5}, "motion": {"CPU": 0.1}},
        doc='Ray resources one session holds, by "RENDERER.MODE" (then "RENDERER", then "MODE"); a '
            'motion-mode session (output "motion", no renderer) by "motion.MODE" (then "motion"): CPU '
            "cores, GPU fraction, custom resources. Set from `facecast bench cluster` (sessions per node "
            "at the p95 frame budget; --output motion for motion mode; --renderer splat for splat: "
            "its 1.5 is 512² splat's measured 1.31 cores + 15 %, BENCHMARKS.md)")
    warm_workers_per_node: int = _f(1, min=0, max=64, doc="started, warmed actors kept waiting on each node "
                                                         "with room (0 = start one per session)")
    place_timeout_s: float = _f(60.0, min=1.0, max=600.0,
                                doc="a session actor not started this long after placement is given up")
    call_timeout_s: float = _f(20.0, min=0.5, max=600.0, doc="a signalling call to a worker (offer, attach)")
    node_refresh_s: float = _f(2.0, min=0.1, max=600.0, doc="the front door re-reads the node list this often")
    lost_node_quarantine_s: float = _f(60.0, min=0.0, max=86400.0,
                                       doc="no new session on a node whose worker died, for this long")
    saturated_frame_p95_ms: float = _f(40.0, min=0.0, max=10000.0,
                                       doc="a node whose session's frame time p95 was above this (or that "
                                           "skipped ticks) at the last load check takes no new session; 0 = "
                                           "off. Default: the frame budget at 25 fps")
    load_check_s: float = _f(2.0, min=0.1, max=600.0, doc="how often the sessions' frame numbers are read")
    relay_poll_s: float = _f(10.0, min=0.1, max=60.0, doc="longest wait of one WebSocket relay poll")

    def __post_init__(self) -> None:
        if not isinstance(self.session_resources, dict) or not self.session_resources:
            raise ConfigError("cluster.session_resources: expected a non-empty table of "
                              '"RENDERER.MODE" = {CPU = 1.0, ...}')
        for key, need in self.session_resources.items():
            if not isinstance(need, dict) or not need:
                raise ConfigError(f"cluster.session_resources.{key}: expected a table like {{CPU = 1.0}}")
            for name, amount in need.items():
                if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not 0 <= amount <= 1024:
                    raise ConfigError(f"cluster.session_resources.{key}.{name}: {amount!r} is not a number "
                                      "in [0, 1024]")
            if not any(need.values()):
                raise ConfigError(f"cluster.session_resources.{key}: a session must need some resource "
                                  "(all amounts are 0)")
        a = self.address
        if a and not (a == "auto" or a.startswith("ray://") or (":" in a and "/" not in a)):
            raise ConfigError(f'cluster.address: {a!r} is not "", "auto", "ray://HOST:PORT" or "HOST:PORT"')


@dataclass(frozen=True)
class LiveKitConfig:
    """The LiveKit avatar dispatcher and its workers (engine/integrations/livekit, docs/deploy.md)."""
    dispatcher_host: str = _f("127.0.0.1", doc="where `facecast livekit-avatar` listens for launch requests")
    dispatcher_port: int = _f(8089, min=1, max=65535)
    max_workers: int = _f(4, min=1, max=256, doc="avatar workers (one session each) this dispatcher runs at once")
    avatar_identity: str = _f("facecast-avatar", doc="the avatar worker's participant identity in the room")
    connect_timeout_s: float = _f(20.0, min=1.0, max=300.0, doc="a worker that has not joined its room by then fails")


@dataclass(frozen=True)
class Config:
    video: VideoConfig = field(default_factory=VideoConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    motion: MotionConfig = field(default_factory=MotionConfig)
    render: RenderConfig = field(default_factory=RenderConfig)
    avatar: AvatarConfig = field(default_factory=AvatarConfig)
    webrtc: WebRTCConfig = field(default_factory=WebRTCConfig)
    server: ServerConfig = field(default_factory=ServerConfig)
    tts: TTSConfig = field(default_factory=TTSConfig)
    webcam: WebcamConfig = field(default_factory=WebcamConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    livekit: LiveKitConfig = field(default_factory=LiveKitConfig)

    def resolve_path(self, p: str) -> Path:
        """Paths in configs are relative to the repository root unless absolute."""
        path = Path(p).expanduser()
        return path if path.is_absolute() else REPO_ROOT / path


def _check_value(section: str, f: dataclasses.Field, value: Any, hint: Any) -> Any:
    key = f"{section}.{f.name}"
    origin = typing.get_origin(hint)
    base = origin or hint
    if base is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if base in (int, float, str, bool, list, dict):
        if not isinstance(value, base) or (base is int and isinstance(value, bool)):
            raise ConfigError(f"{key}: expected {base.__name__}, got {type(value).__name__} ({value!r})")
    md = f.metadata
    if md.get("min") is not None and value < md["min"]:
        raise ConfigError(f"{key}: {value!r} is below the minimum {md['min']}")
    if md.get("max") is not None and value > md["max"]:
        raise ConfigError(f"{key}: {value!r} is above the maximum {md['max']}")
    if md.get("choices") and value not in md["choices"]:
        raise ConfigError(f"{key}: {value!r} is not one of {list(md['choices'])}")
    return value


def _build(cls: type, section: str, data: dict[str, Any]) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{section}: expected a table")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ConfigError(f"{section or 'config'}: unknown key(s) {sorted(unknown)}")
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            kwargs[f.name] = _build(hint, f.name, data[f.name])
        else:
            kwargs[f.name] = _check_value(section, f, data[f.name], hint)
    return cls(**kwargs)


def _merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Load ``configs/default.toml`` (or ``path``), then apply nested ``overrides``."""
    p = Path(path) if path else CONFIG_DIR / "default.toml"
    try:
        data = tomllib.loads(p.read_text()) if p.exists() else {}
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{p}: not valid TOML: {e}") from e
    if path and not p.exists():
        raise ConfigError(f"config file {p} does not exist")
    data = _merge(data, overrides or {})
    return _build(Config, "", data)


def replace(cfg: Config, **sections: dict[str, Any]) -> Config:
    """A copy of ``cfg`` with some fields of some sections replaced, validated."""
    data = {s.name: dataclasses.asdict(getattr(cfg, s.name)) for s in dataclasses.fields(cfg)}
    return _build(Config, "", _merge(data, sections))
