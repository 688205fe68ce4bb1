"""facecast as a LiveKit Agents avatar plugin (extra ``facecast[livekit]``), in the shape of
LiveKit's own avatar plugins:

- agent side (``agent.AvatarSession``): ``await AvatarSession(...).start(agent_session, room)``
  asks a facecast avatar dispatcher to send an avatar worker into the room and routes the
  agent's audio to it (``DataStreamAudioOutput``);
- avatar side (``worker``): joins the room, receives the audio byte stream, publishes video and
  audio tracks through LiveKit's ``AvatarRunner`` (which answers ``lk.clear_buffer`` with
  ``lk.playback_finished``); ``dispatcher`` is the HTTP service that starts workers;
- ``video.FacecastVideoGenerator``: the self-hosted ``VideoGenerator`` contract.
"""
from engine.integrations.livekit.video import FacecastVideoGenerator

__all__ = ["FacecastVideoGenerator"]
