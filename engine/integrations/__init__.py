"""Adapters that put facecast inside assistant frameworks (optional extras; docs/deploy.md).

- ``engine.integrations.avatar``  the framework-neutral stream both adapters read: the session's
  frames as ``AvatarFrame`` (image + this frame's speech audio, or none) and ``SegmentEnded``;
  ``InProcessAvatar`` runs a Session here, ``engine.integrations.remote.RemoteAvatar`` drives a
  facecast server (assistant WebSocket API + a WebRTC viewer).
- ``engine.integrations.pipecat``  a Pipecat ``FrameProcessor`` (extra ``facecast[pipecat]``).
- ``engine.integrations.livekit``  a LiveKit Agents avatar plugin (extra ``facecast[livekit]``).

The engine core never imports this package (tests/test_layering.py).
"""
