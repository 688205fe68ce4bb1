"""`facecast local` against real PortAudio/ALSA devices defined by the test (no mocks).

A ~/.asoundrc in a temporary HOME defines two ALSA PCMs that PortAudio lists like any device:
``facecast_test_mic`` (ALSA's ``file`` plugin reading a raw 48 kHz s16 speech file as its
capture, over the ``null`` plugin) and ``facecast_test_speaker`` (the ``file`` plugin writing
what is played to a raw file). The command runs in a subprocess with that HOME, echoes the
speech (echo mode), writes the mp4, and plays the avatar's voice to the speaker file.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from engine.audio.resample import resample
from engine.audio.tts import OUTPUT_SAMPLE_RATE, Speaker
from engine.config import REPO_ROOT

RATE = 48000
SECONDS = 3
ASOUNDRC = """
pcm.fc_mic_file {{ type file; slave.pcm "null"; file "{d}/mic_tap.raw"; infile "{d}/speech.raw"; format "raw" }}
pcm.fc_speaker_file {{ type file; slave.pcm "null"; file "{d}/played.raw"; format "raw" }}
pcm.facecast_test_mic {{ type plug; slave {{ pcm "fc_mic_file"; format S16_LE; rate 48000; channels 1 }} }}
pcm.facecast_test_speaker {{ type plug; slave {{ pcm "fc_speaker_file"; format S16_LE; rate 48000; channels 1 }} }}
"""


def _portaudio() -> bool:
    try:
        import sounddevice  # noqa: F401
        return True
    except OSError:
        return False


def _local(args: list[str], home: Path, timeout: float = 240, wrap: list[str] = ()) -> subprocess.CompletedProcess:
    env = {**os.environ, "HOME": str(home)}
    env.pop("ALSA_CONFIG_PATH", None)
    return subprocess.run([*wrap, sys.executable, "-m", "engine.cli", "local", *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def _speech_input(tmp_path: Path) -> tuple[np.ndarray, int]:
    """Writes the mic's input (0.3 s silence, a sentence, silence) and the ~/.asoundrc."""
    speech = resample(Speaker().synthesize("Hello there, testing one two three."), OUTPUT_SAMPLE_RATE, RATE)
    lead = int(0.3 * RATE)
    mic = np.concatenate([np.zeros(lead, np.float32), speech, np.zeros(RATE * 6, np.float32)])
    pcm = (np.clip(mic, -1, 1) * 32767).round().astype("<i2")
    (tmp_path / "speech.raw").write_bytes(pcm.tobytes())
    (tmp_path / ".asoundrc").write_text(ASOUNDRC.format(d=tmp_path))
    return mic, lead


def _best_match(played: np.ndarray, part: np.ndarray) -> float:
    """Largest normalized cross-correlation of ``part`` anywhere in ``played``."""
    from scipy.signal import correlate
    dots = correlate(played.astype(np.float64), part.astype(np.float64), mode="valid", method="fft")
    energy = np.concatenate([[0.0], np.cumsum(played.astype(np.float64) ** 2)])
    norms = np.sqrt(energy[len(part):] - energy[:-len(part)]) * np.linalg.norm(part) + 1e-9
    return float(np.max(dots / norms))


def _device_count(home: Path) -> int:
    env = {**os.environ, "HOME": str(home)}
    env.pop("ALSA_CONFIG_PATH", None)
    out = subprocess.run([sys.executable, "-c", "import sounddevice as sd; print(len(sd.query_devices()))"],
                         env=env, capture_output=True, text=True, timeout=60)
    return int(out.stdout.strip()) if out.returncode == 0 else 0   # no PortAudio: no device


def test_without_a_sound_device_it_fails_in_one_line(tmp_path):
    """No ALSA card and no ~/.asoundrc: PortAudio finds no device (or PortAudio is missing)."""
    if _device_count(tmp_path):
        pytest.skip("this machine has a sound device")
    out = _local(["--seconds", "1", "--mp4", str(tmp_path / "x.mp4")], tmp_path)
    assert out.returncode == 2, (out.stdout, out.stderr)
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("facecast local: "), out.stdout
    assert "device" in lines[0] or "PortAudio" in lines[0]
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "x.mp4").exists()


@pytest.mark.skipif(not _portaudio(), reason="libportaudio2 is not installed (facecast.sh setup installs it)")
def test_unknown_device_name_lists_the_devices(tmp_path):
    (tmp_path / "speech.raw").write_bytes(b"")
    (tmp_path / ".asoundrc").write_text(ASOUNDRC.format(d=tmp_path))
    out = _local(["--audio-in", "no_such_mic", "--seconds", "1", "--mp4", str(tmp_path / "x.mp4")], tmp_path)
    assert out.returncode == 2
    line = out.stdout.strip()
    assert "\n" not in line and "no_such_mic" in line and "facecast_test_mic" in line, line


@pytest.mark.skipif(not _portaudio(), reason="libportaudio2 is not installed (facecast.sh setup installs it)")
def test_echo_through_alsa_devices_writes_mp4_and_plays_the_speech(tmp_path):
    mic, lead = _speech_input(tmp_path)
    mp4 = tmp_path / "out.mp4"
    out = _local(["--audio-in", "facecast_test_mic", "--audio-out", "facecast_test_speaker",
                  "--seconds", str(SECONDS), "--mp4", str(mp4)], tmp_path)
    assert out.returncode == 0, (out.stdout, out.stderr[-3000:])

    # the mp4: SECONDS of video (25 fps) and of audio that carries the echoed speech
    with av.open(str(mp4)) as c:
        v = c.streams.video[0]
        assert c.streams.audio, "the mp4 has no audio track"
        assert v.frames == SECONDS * 25, v.frames
        assert float(v.duration * v.time_base) == pytest.approx(SECONDS, abs=0.05)
        audio = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(audio=0)])
    assert len(audio) / RATE == pytest.approx(SECONDS, abs=0.05)
    assert np.sqrt(np.mean(audio ** 2)) > 0.02

    # the speaker got exactly SECONDS of frame audio, and it is the speech, sample for sample
    played = np.frombuffer((tmp_path / "played.raw").read_bytes(), "<i2").astype(np.float32) / 32768
    assert len(played) == SECONDS * RATE, len(played)
    best = _best_match(played, mic[lead:lead + RATE])   # the first second of the words
    assert best > 0.99, best


@pytest.mark.skipif(not _portaudio() or not shutil.which("xvfb-run"),
                    reason="needs libportaudio2 and xvfb-run (apt: xvfb)")
def test_window_mode_shows_frames_and_plays_the_speech(tmp_path):
    mic, lead = _speech_input(tmp_path)
    out = _local(["--audio-in", "facecast_test_mic", "--audio-out", "facecast_test_speaker",
                  "--seconds", str(SECONDS), "--window"], tmp_path, wrap=["xvfb-run", "-a"])
    assert out.returncode == 0, (out.stdout, out.stderr[-3000:])
    shown = int(out.stdout.split(" frames displayed")[0].rsplit(" ", 1)[1])
    assert shown >= SECONDS * 25 - 5, out.stdout      # all but the last output-latency's worth
    played = np.frombuffer((tmp_path / "played.raw").read_bytes(), "<i2").astype(np.float32) / 32768
    assert len(played) == SECONDS * RATE
    assert _best_match(played, mic[lead:lead + RATE]) > 0.99
