"""Start aiortc's video encoder at a chosen bitrate — the one place facecast reaches inside aiortc.

aiortc starts its VP8/H.264 encoders at 500 kbps and only adapts on REMB feedback, which
browsers that use transport-cc never send, so a session would stay at 500 kbps. aiortc has
no public API for an encoder's bitrate (``RTCRtpSender`` has no ``setParameters``), so this
helper reads the sender's name-mangled private encoder. ``tests/test_webrtc_encoder_bitrate.py``
runs a real sender and fails as soon as aiortc renames or removes what is used here.
"""
from __future__ import annotations

from aiortc import RTCRtpSender

_ENCODER_ATTR = "_RTCRtpSender__encoder"   # created with the sender's first frame


def encoder_of(sender: RTCRtpSender):
    """The sender's encoder, or None before its first frame was encoded."""
    return getattr(sender, _ENCODER_ATTR, None)


def set_encoder_bitrate(sender: RTCRtpSender, bits_per_second: int) -> bool:
    """Set the sender's video encoder target bitrate; False while there is no encoder yet."""
    encoder = encoder_of(sender)
    if encoder is None or not hasattr(encoder, "target_bitrate"):
        return False
    encoder.target_bitrate = int(bits_per_second)
    return True
