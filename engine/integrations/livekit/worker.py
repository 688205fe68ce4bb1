"""The avatar side: a worker that joins a LiveKit room as the agent's avatar.

    await run_avatar_worker(livekit_url, token)      # returns when the room is left

It connects with the token the agent's ``AvatarSession`` minted (identity
``livekit.avatar_identity``, publishing on behalf of the agent), receives the agent's audio
byte stream (``DataStreamAudioReceiver``, topic ``lk.audio_stream``), and runs LiveKit's
``AvatarRunner`` over ``FacecastVideoGenerator``: it publishes the avatar's video and audio
tracks in sync, and answers the agent's ``lk.clear_buffer`` with ``lk.playback_finished
{playback_position, interrupted}`` (and sends one after each utterance that played out).
It leaves when the agent leaves, the room disconnects, or ``stop`` is set.

Not verified on these machines (no LiveKit server can run here): joining a room, publishing,
and the RPCs. The generator and the runner around it are tested in-process
(tests/test_livekit_video.py).
"""
from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from livekit import rtc
from livekit.agents.voice.avatar import AvatarRunner, DataStreamAudioReceiver

from engine.config import Config, load_config
from engine.integrations.avatar import InProcessAvatar
from engine.integrations.livekit.video import FacecastVideoGenerator

log = logging.getLogger(__name__)


class WorkerError(RuntimeError):
    """The worker could not join its room."""


async def run_avatar_worker(livekit_url: str, token: str, *, config: Config | None = None,
                            avatar_path: str | Path | None = None, stop: asyncio.Event | None = None) -> None:
    config = config or load_config()
    room = rtc.Room()
    try:
        await asyncio.wait_for(room.connect(livekit_url, token), config.livekit.connect_timeout_s)
    except asyncio.TimeoutError:
        raise WorkerError(f"could not join the LiveKit room at {livekit_url} within "
                          f"{config.livekit.connect_timeout_s:.0f} s") from None
    except Exception as e:   # rtc.ConnectError and friends: a bad URL, token or server
        raise WorkerError(f"could not join the LiveKit room at {livekit_url}: {e}") from e
    gen = FacecastVideoGenerator(InProcessAvatar(config, avatar_path))
    runner: AvatarRunner | None = None
    left = asyncio.Event()
    try:
        await gen.start()
        audio_in = DataStreamAudioReceiver(room)      # the first agent participant that joins
        runner = AvatarRunner(room, audio_recv=audio_in, video_gen=gen, options=gen.options())
        await runner.start()
        log.info("avatar worker joined room %s", room.name)

        def on_leave(p: rtc.RemoteParticipant) -> None:
            if p.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT:
                left.set()

        room.on("participant_disconnected", on_leave)
        room.on("disconnected", lambda *_: left.set())
        waits = [asyncio.create_task(left.wait())] + ([asyncio.create_task(stop.wait())] if stop else [])
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in waits:
                t.cancel()
    finally:
        if runner is not None:
            await runner.aclose()
        await gen.aclose()
        await room.disconnect()
