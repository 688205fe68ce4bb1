"""The server's sessions, by id, with a cap on how many run at once."""
from __future__ import annotations

import logging
from pathlib import Path

from engine.config import Config, replace
from engine.metrics import Metrics
from engine.safety import clip
from engine.session import Session

log = logging.getLogger(__name__)


class UnknownSessionError(KeyError):
    """No session with that id (a KeyError whose message says which id)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown session"


class TooManySessionsError(RuntimeError):
    """``server.max_sessions`` sessions are already running."""


MAX_AVATAR_NAME = 255


class BadAvatarError(ValueError):
    """A client-chosen avatar name that is not acceptable (not a missing file)."""


class UnknownAvatarError(FileNotFoundError):
    """A client-chosen avatar that is not in the server's avatar folder (server.avatar_dir)."""


def is_avatar_file(path: Path) -> bool:
    """Whether ``path`` looks like a facecast avatar (a zip holding meta.json and arrays.npz);
    cheap: reads the zip directory only."""
    import zipfile
    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return False
    return {"meta.json", "arrays.npz"} <= names


def resolve_avatar(config: Config, name: str | None) -> Path:
    """A client-chosen avatar: a name or relative path inside the avatar folder
    (``server.avatar_dir``, default ``assets/``; '.avatar' may be left out). Anything outside
    it is refused, so clients cannot open arbitrary files. Messages never contain a filesystem
    path (they are shown to clients)."""
    if name is None:
        return config.resolve_path(config.render.avatar)
    if not isinstance(name, str) or not name or "\x00" in name:
        raise BadAvatarError("avatar must be a non-empty string")
    if len(name) > MAX_AVATAR_NAME:
        raise BadAvatarError(f"avatar name of {len(name)} characters is longer than {MAX_AVATAR_NAME}")
    root = config.resolve_path(config.server.avatar_dir).resolve()
    try:
        candidate = (root / name).resolve()
        if candidate.suffix != ".avatar":
            candidate = candidate.with_name(candidate.name + ".avatar")
        if root not in candidate.parents:
            raise BadAvatarError(f"avatar {clip(name)} must name a file inside the server's avatar folder (server.avatar_dir)")
        found = candidate.is_file()
    except OSError as e:   # a name the filesystem refuses (too long a component, ...)
        raise BadAvatarError(f"avatar {clip(name)} is not a usable file name ({e.strerror or type(e).__name__})") from None
    if not found:
        raise UnknownAvatarError(f"no avatar {clip(name)} in the server's avatar folder (server.avatar_dir)")
    if not is_avatar_file(candidate):
        raise BadAvatarError(f"{clip(name)} is not a facecast avatar file (make one with `facecast avatar create`)")
    return candidate


def creation_error(e: BaseException) -> tuple[str, str]:
    """(code, message) to show a client for a failed ``SessionRegistry.create``. Only messages
    written for clients are passed on; anything else (it may name files) becomes a generic
    message, and the caller logs the details."""
    if isinstance(e, BadAvatarError):
        return "bad_avatar", str(e)
    if isinstance(e, UnknownAvatarError):
        return "unknown_avatar", str(e)
    if isinstance(e, TooManySessionsError):
        return "too_many_sessions", str(e)
    return "session_failed", f"could not create a session ({type(e).__name__}; details are in the server log)"


class SessionRegistry:
    def __init__(self, config: Config, metrics: Metrics | None = None, avatar_dir: str | Path | None = None) -> None:
        self.config = config
        self.metrics = metrics or Metrics()
        self.max_sessions = config.server.max_sessions
        self._sessions: dict[str, Session] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def __contains__(self, session_id: str) -> bool:
        return session_id in self._sessions

    def ids(self) -> list[str]:
        return list(self._sessions)

    async def create(self, mode: str = "assistant", avatar: str | None = None,
                     session_id: str | None = None, mirror: bool | None = None,
                     output: str = "video") -> Session:
        """Create and start a session; raises ValueError / FileNotFoundError /
        TooManySessionsError with a message a client can be shown. ``mirror`` overrides
        ``webcam.mirror`` for this session (None: the server's setting); ``output`` is
        "video" (rendered frames) or "motion" (motion frames + audio, no renderer)."""
        if len(self._sessions) >= self.max_sessions:
            raise TooManySessionsError(f"server.max_sessions = {self.max_sessions} sessions are already running")
        if session_id is not None and session_id in self._sessions:
            raise ValueError(f"a session with id {session_id!r} already exists")
        avatar_path = resolve_avatar(self.config, avatar)
        config = self.config if mirror is None else replace(self.config, webcam={"mirror": bool(mirror)})
        session = Session(config, avatar_path=avatar_path, mode=mode, session_id=session_id, metrics=self.metrics,
                          output=output)
        self._sessions[session.id] = session   # reserve the slot while starting
        try:
            await session.start()
        except BaseException:
            self._sessions.pop(session.id, None)
            await session.close()
            raise
        log.info("session %s created (mode %s, output %s, avatar %s)", session.id, mode, output, session.avatar_path)
        return session

    def get(self, session_id: str) -> Session:
        """The session with that id; raises ``UnknownSessionError`` (a KeyError) if none."""
        try:
            return self._sessions[session_id]
        except (KeyError, TypeError):
            raise UnknownSessionError(f"no session with id {clip(session_id)}") from None

    def find(self, session_id: str) -> Session | None:
        """Like ``get`` but returns None when there is no such session."""
        return self._sessions.get(session_id) if isinstance(session_id, str) else None

    async def remove(self, session_id: str) -> None:
        """Close and forget a session (no error if it is already gone)."""
        session = self._sessions.pop(session_id, None)
        if session is not None:
            await session.close()
            log.info("session %s closed", session_id)

    async def close_all(self) -> None:
        for sid in list(self._sessions):
            await self.remove(sid)
