"""Local sound devices (PortAudio via ``sounddevice``) and a live mp4 writer, for ``facecast local``.

* ``open_sounddevice()``: the module, or ``LocalAudioError`` (PortAudio missing);
* ``resolve_device(sd, name, "input"|"output")``: a PortAudio device index from a name
  (substring, as sounddevice matches it) or number, or the default; ``LocalAudioError``
  with the devices there are, when none fits;
* ``MicReader``: a thread reading mono 16-bit blocks (handed on as float32) and handing them to a callback. Reads
  are paced to the wall clock: a device that delivers faster than real time (ALSA's
  ``null``/``file`` plugins do) is read at real time, a real microphone is unaffected;
* ``SpeakerWriter``: a thread writing each frame's audio (as 16-bit), in order, to an output stream;
* ``LiveMp4Writer``: H.264 + AAC of live ``VideoFrame``s, both timed by the frame's own pts
  (video pts = frame index, audio pts = its sample index), so the file is in sync even if a
  frame is dropped.
"""
from __future__ import annotations

import queue
import threading
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

BLOCK_S = 0.02           # mic blocks of 20 ms
PACE_TOLERANCE_S = 0.02  # a reader this far ahead of the wall clock waits


class LocalAudioError(RuntimeError):
    """No usable sound device (or no PortAudio): a one-line reason."""


def open_sounddevice():
    try:
        import sounddevice
    except OSError as e:   # sounddevice raises OSError when libportaudio is missing
        raise LocalAudioError(f"PortAudio is not available ({e}); install libportaudio2") from None
    except ImportError:
        raise LocalAudioError("the 'sounddevice' package is not installed (pip install sounddevice)") from None
    return sounddevice


def _names(sd, kind: str) -> list[str]:
    key = "max_input_channels" if kind == "input" else "max_output_channels"
    return [f"{i}: {d['name']}" for i, d in enumerate(sd.query_devices()) if d[key] > 0]


def resolve_device(sd, name: str | None, kind: str) -> int:
    """The PortAudio index of the ``kind`` ("input"/"output") device named ``name`` (None: default)."""
    key = "max_input_channels" if kind == "input" else "max_output_channels"
    try:
        devices = sd.query_devices()
    except Exception as e:   # PortAudio failed to initialise
        raise LocalAudioError(f"cannot list sound devices: {e}") from None
    if name is None:
        default = sd.default.device[0 if kind == "input" else 1]
        if default is None or default < 0:
            available = _names(sd, kind)
            if not devices or not available:
                raise LocalAudioError(f"no sound {kind} device found")
            raise LocalAudioError(f"no default sound {kind} device; name one with --audio-"
                                  f"{'in' if kind == 'input' else 'out'} (available: {'; '.join(available)})")
        return int(default)
    target = int(name) if name.isdigit() else name
    try:
        info = sd.query_devices(target, kind)
    except (ValueError, sd.PortAudioError) as e:
        available = _names(sd, kind)
        raise LocalAudioError(f"no sound {kind} device {name!r} ({str(e).splitlines()[0]}); available: "
                              f"{'; '.join(available) or 'none'}") from None
    if info[key] < 1:
        raise LocalAudioError(f"sound device {name!r} has no {kind} channels")
    return int(info["index"])


class MicReader(threading.Thread):
    """Reads ``rate`` Hz mono float32 blocks from ``device`` and calls ``on_audio(block)``."""

    def __init__(self, sd, device: int, rate: int, on_audio) -> None:
        super().__init__(name="mic", daemon=True)
        self.on_audio, self.rate = on_audio, rate
        self.block = int(rate * BLOCK_S)
        self._halt = threading.Event()
        self.overflows = 0
        self.samples = 0
        self.error: str | None = None
        try:
            # int16: every device has it, and float32 through ALSA plugin chains (plug over
            # file/mmap) was seen to garble capture where int16 comes through bit-exact
            self.stream = sd.InputStream(device=device, samplerate=rate, channels=1, dtype="int16",
                                         blocksize=self.block)
        except Exception as e:
            raise LocalAudioError(f"cannot open sound input device {device} at {rate} Hz: "
                                  f"{str(e).splitlines()[0]}") from None

    def run(self) -> None:
        try:
            with self.stream:
                t0 = time.monotonic()
                while not self._halt.is_set():
                    data, overflowed = self.stream.read(self.block)
                    self.overflows += bool(overflowed)
                    self.samples += len(data)
                    self.on_audio(data[:, 0].astype(np.float32) / 32768.0)
                    ahead = self.samples / self.rate - (time.monotonic() - t0)
                    if ahead > PACE_TOLERANCE_S:
                        self._halt.wait(ahead)
        except Exception as e:
            self.error = f"microphone: {e}"

    def stop(self) -> None:
        self._halt.set()


class SpeakerWriter(threading.Thread):
    """Writes queued mono float32 arrays, in order, to ``device`` (blocking writes)."""

    def __init__(self, sd, device: int, rate: int, block: int) -> None:
        super().__init__(name="speaker", daemon=True)
        self.queue: queue.Queue = queue.Queue()
        self.written = 0
        self.underflows = 0
        self.max_queued = 0
        self.error: str | None = None
        try:
            self.stream = sd.OutputStream(device=device, samplerate=rate, channels=1, dtype="int16",
                                          blocksize=block)
        except Exception as e:
            raise LocalAudioError(f"cannot open sound output device {device} at {rate} Hz: "
                                  f"{str(e).splitlines()[0]}") from None
        self.latency = float(self.stream.latency)
        self.rate = rate
        self._queued = 0   # samples handed to play() and not written yet
        self._lock = threading.Lock()

    def play(self, samples: np.ndarray) -> None:
        with self._lock:
            self._queued += len(samples)
        self.queue.put(np.ascontiguousarray(samples, np.float32))
        self.max_queued = max(self.max_queued, self.queue.qsize())

    def delay_s(self) -> float:
        """How long until audio handed to ``play`` now is heard: queued + the stream's latency."""
        return self._queued / self.rate + self.latency

    def finish(self, timeout: float = 5.0) -> None:
        self.queue.put(None)
        self.join(timeout)

    def run(self) -> None:
        try:
            with self.stream:
                while True:
                    x = self.queue.get()
                    if x is None:
                        break
                    pcm = (np.clip(x, -1.0, 1.0) * 32767.0).round().astype(np.int16)
                    self.underflows += bool(self.stream.write(pcm[:, None]))
                    self.written += len(x)
                    with self._lock:
                        self._queued -= len(x)
        except Exception as e:
            self.error = f"speaker: {e}"


class LiveMp4Writer:
    """H.264 (yuv420p) + AAC mono of live frames; pts from the frames themselves."""

    VIDEO_TIME_BASE = Fraction(1, 90000)

    def __init__(self, out: str | Path, width: int, height: int, fps: int, rate: int, crf: int = 20) -> None:
        import av
        self.fps, self.rate = fps, rate
        self.out = Path(out)
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.container = av.open(str(self.out), mode="w")
        self.v = self.container.add_stream("libx264", rate=fps, options={
            "crf": str(crf), "preset": "veryfast", "x264-params": "bframes=0"})
        self.v.width, self.v.height, self.v.pix_fmt = width, height, "yuv420p"
        self.v.codec_context.time_base = self.VIDEO_TIME_BASE
        self.a = self.container.add_stream("aac", rate=rate, layout="mono")
        self.a.codec_context.time_base = Fraction(1, rate)
        self.first: tuple[int, int] | None = None   # (video pts, audio pts) of the first frame
        self.frames = 0
        self.samples_end = 0

    def write(self, frame) -> None:
        import av
        if self.first is None:
            self.first = (frame.pts, frame.audio.pts)
        k = frame.pts - self.first[0]
        vf = av.VideoFrame.from_ndarray(frame.image, format="rgb24")
        vf.pts, vf.time_base = round(k / self.fps / self.VIDEO_TIME_BASE), self.VIDEO_TIME_BASE
        for p in self.v.encode(vf):
            self.container.mux(p)
        s = frame.audio.pts - self.first[1]
        af = av.AudioFrame.from_ndarray(frame.audio.samples[None, :].astype(np.float32), format="flt", layout="mono")
        af.sample_rate, af.pts, af.time_base = self.rate, s, Fraction(1, self.rate)
        for p in self.a.encode(af):
            self.container.mux(p)
        self.frames += 1
        self.samples_end = s + len(frame.audio.samples)

    def close(self) -> None:
        try:
            for stream in (self.v, self.a):
                for p in stream.encode(None):
                    self.container.mux(p)
        finally:
            self.container.close()
