"""`speak` starts playing after its first sentence, not after the whole text (a real server, a
real WebSocket client, the real espeak-ng). Before: the whole text was synthesized first, and
the time to `playback.started` grew with the text (4.2 s for 10 s of speech on the test machine).
"""
import asyncio
import shutil
import time

import pytest

from engine.audio.tts import Speaker, split_for_speech

from facecast_client import FacecastClient

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")

FPS = 25
LONG_TEXT = ("Good morning, and welcome to the demonstration. "
             "I will read a few sentences so that you can see how quickly I start talking. "
             "The first sentence is synthesized and played while the next ones are still being made. "
             "Nothing waits for the whole paragraph any more. "
             "If you interrupt me, I stop at once and say nothing more of this text.")
# The goal is 0.35 s; the bound leaves room for a machine whose cores are busy with other work.
START_BOUND_S = 0.7


def test_split_for_speech_keeps_every_word_in_order():
    pieces = split_for_speech(LONG_TEXT)
    assert len(pieces) == 5 and pieces[0] == "Good morning, and welcome to the demonstration."
    assert " ".join(pieces).split() == LONG_TEXT.split()
    long_first = "word " * 60 + "end."
    first = split_for_speech(long_first)[0]
    assert len(first) <= 80 and " ".join(split_for_speech(long_first)).split() == long_first.split()
    assert split_for_speech("Hi. ... Ok") == ["Hi. ...", "Ok"]
    assert split_for_speech("   ") == []


async def test_long_text_starts_quickly_and_plays_whole(server):
    async with await FacecastClient.connect(server.ws_url) as c:
        await asyncio.sleep(1.0)        # the session is up and idle
        t0 = time.monotonic()
        await c.speak(LONG_TEXT)
        await c.wait_for("playback.started", timeout=20)
        to_start = time.monotonic() - t0
        queued = await c.wait_for("speak.queued", timeout=20)
        finished = await c.wait_for("playback.finished", timeout=60)
    whole = Speaker().synthesize(LONG_TEXT)
    print(f"speak → playback.started {to_start * 1000:.0f} ms; {queued['duration_s']:.2f} s of speech")
    assert to_start <= START_BOUND_S, f"speak → playback.started took {to_start:.2f} s"
    assert queued["duration_s"] > 10.0
    # every piece was played, in one segment, to the end
    assert not finished["interrupted"]
    assert finished["position_s"] == pytest.approx(queued["duration_s"], abs=2 / FPS)
    assert 0.85 < queued["duration_s"] / (len(whole) / 16000) < 1.25
    assert [e["type"] for e in c.history].count("playback.started") == 1


async def test_interrupt_mid_text_stops_further_sentences(server):
    async with await FacecastClient.connect(server.ws_url) as c:
        await c.speak(LONG_TEXT)
        await c.wait_for("playback.started", timeout=20)
        await asyncio.sleep(1.0)
        await c.interrupt()
        finished = await c.wait_for("playback.finished", timeout=10)
        assert finished["interrupted"] and finished["position_s"] < 3.0
        await asyncio.sleep(2.0)       # a synthesis that went on would open a new segment here
        session = server.registry.get(c.session_id)
        assert session.speech.buffered_s() == 0.0
    types = [e["type"] for e in c.history]
    assert types.count("playback.started") == 1, types
    assert "speak.queued" not in types
