"""A small asyncio client for the facecast assistant WebSocket API (docs/protocol.md)."""
from facecast_client.client import FacecastClient, FacecastError, MotionMessage, load_wav_pcm16

__all__ = ["FacecastClient", "FacecastError", "MotionMessage", "load_wav_pcm16"]
