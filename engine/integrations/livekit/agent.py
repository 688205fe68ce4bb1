"""The agent side: ``AvatarSession``, in the shape of LiveKit's avatar plugins.

    from engine.integrations.livekit.agent import AvatarSession

    async def entrypoint(ctx: JobContext):
        session = AgentSession(stt=..., llm=..., tts=...)
        avatar = AvatarSession(dispatcher_url="http://avatar-host:8089")
        await avatar.start(session, room=ctx.room)   # before session.start(...)
        await session.start(agent=Agent(...), room=ctx.room, room_output_options=RoomOutputOptions(audio_enabled=False))

``start`` mints a token for the avatar participant (identity ``livekit.avatar_identity``,
allowed to publish on behalf of this agent: attribute ``lk.publish_on_behalf``), asks the
facecast avatar dispatcher (``facecast livekit-avatar``) to send a worker into the room, and
makes the agent's audio output a ``DataStreamAudioOutput`` to that participant: the agent's
speech goes to the avatar, which publishes it as video + audio; interruptions and playback
positions travel back over LiveKit RPC.
"""
from __future__ import annotations

import logging
import os

import aiohttp
from livekit import api, rtc
from livekit.agents import AgentSession
from livekit.agents.voice.avatar import DataStreamAudioOutput
from livekit.agents.voice.room_io import ATTRIBUTE_PUBLISH_ON_BEHALF

from engine.config import Config, load_config

log = logging.getLogger(__name__)

AGENT_SAMPLE_RATE = 24000   # the audio the agent streams to the avatar (a rate facecast takes)


class AvatarSessionError(RuntimeError):
    """Missing LiveKit credentials, or the dispatcher refused the launch."""


class AvatarSession:
    def __init__(self, *, dispatcher_url: str | None = None, dispatcher_token: str | None = None,
                 avatar_identity: str | None = None, avatar_name: str = "facecast avatar",
                 config: Config | None = None) -> None:
        cfg = (config or load_config()).livekit
        self.dispatcher_url = (dispatcher_url or os.environ.get("FACECAST_AVATAR_DISPATCHER_URL")
                               or f"http://{cfg.dispatcher_host}:{cfg.dispatcher_port}").rstrip("/")
        self.dispatcher_token = dispatcher_token if dispatcher_token is not None else os.environ.get("FACECAST_TOKEN", "")
        self.avatar_identity = avatar_identity or cfg.avatar_identity
        self.avatar_name = avatar_name
        self.worker_id: str | None = None

    def avatar_token(self, room_name: str, agent_identity: str, api_key: str, api_secret: str) -> str:
        """The avatar participant's access token: join this room, publish on behalf of the agent."""
        if not room_name:
            raise AvatarSessionError("the room has no name yet: call AvatarSession.start after joining it "
                                     "(await ctx.connect())")
        return (api.AccessToken(api_key=api_key, api_secret=api_secret)
                .with_kind("agent")
                .with_identity(self.avatar_identity)
                .with_name(self.avatar_name)
                .with_grants(api.VideoGrants(room_join=True, room=room_name))
                .with_attributes({ATTRIBUTE_PUBLISH_ON_BEHALF: agent_identity})
                .to_jwt())

    async def start(self, agent_session: AgentSession, room: rtc.Room, *, livekit_url: str | None = None,
                    livekit_api_key: str | None = None, livekit_api_secret: str | None = None,
                    agent_identity: str | None = None) -> None:
        livekit_url = livekit_url or os.environ.get("LIVEKIT_URL")
        livekit_api_key = livekit_api_key or os.environ.get("LIVEKIT_API_KEY")
        livekit_api_secret = livekit_api_secret or os.environ.get("LIVEKIT_API_SECRET")
        if not (livekit_url and livekit_api_key and livekit_api_secret):
            raise AvatarSessionError("livekit_url, livekit_api_key and livekit_api_secret must be given "
                                     "or set as LIVEKIT_URL, LIVEKIT_API_KEY, LIVEKIT_API_SECRET")
        if agent_identity is None:   # the agent's own participant (the room is joined by now)
            agent_identity = room.local_participant.identity if room.isconnected() else ""
        token = self.avatar_token(room.name, agent_identity, livekit_api_key, livekit_api_secret)
        body = {"livekit_url": livekit_url, "token": token, "room_name": room.name}
        headers = {"Authorization": f"Bearer {self.dispatcher_token}"} if self.dispatcher_token else None
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as http:
                async with http.post(f"{self.dispatcher_url}/launch", json=body, headers=headers) as resp:
                    reply = await resp.json(content_type=None)
                    if resp.status != 202:
                        raise AvatarSessionError(f"the facecast avatar dispatcher at {self.dispatcher_url} "
                                                 f"refused the launch: HTTP {resp.status} {reply}")
        except aiohttp.ClientError as e:
            raise AvatarSessionError(f"cannot reach the facecast avatar dispatcher at {self.dispatcher_url}: {e}") from e
        self.worker_id = reply.get("worker_id")
        log.info("facecast avatar worker %s launched into room %s", self.worker_id, room.name)
        agent_session.output.audio = DataStreamAudioOutput(room, destination_identity=self.avatar_identity,
                                                           sample_rate=AGENT_SAMPLE_RATE)
