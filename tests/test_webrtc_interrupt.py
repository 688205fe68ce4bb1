"""Interruption seen by a real WebRTC viewer: audio stops at once, lips within 150 ms.

Received audio and video are put on the sender's clock through the RTCP sender
reports. The interrupt cuts the audio at once (by construction), so the moment
the received speech goes silent is the interrupt as the viewer experiences it;
the mouth must be at rest in every frame from 150 ms after that moment.
"""
import asyncio
import time

import numpy as np
from aiohttp import ClientSession

from engine.motion.space import MotionFrame
from engine.pipeline.render import create_renderer
from engine.server import REGISTRY_KEY

from media_probe import envelope, mouth_pixel_change, mouth_roi, speech_bursts
from rtc_client import Viewer

NTP_OFFSET = 2208988800  # seconds from 1900 (NTP) to 1970 (Unix)


async def test_interrupt_stops_audio_and_lips_for_a_viewer(server):
    base, app, config = server.http_url, server.app, server.config
    session = await app[REGISTRY_KEY].create("assistant")
    events = session.events()
    viewer = Viewer()
    async with ClientSession() as http:
        await viewer.connect(http, base, session_id=session.id)
    for _ in range(100):
        if len(viewer.video) > 25:
            break
        await asyncio.sleep(0.1)
    speech, _ = speech_bursts(config, texts=("Let me tell you a long story about the sea and the ships "
                                             "that sail across it every single day.",), lead_s=0.0)
    session.push_speech(speech, 48000)
    session.end_segment()
    # interrupt once the viewer has heard ~1.4 s of the speech (not after a fixed wait: on a loaded
    # machine the first audio can arrive late, and the checks below need speech before the cut)
    for _ in range(200):
        if sum(envelope(a[2], 48000, 0.02).max() > 0.02 for a in list(viewer.audio)) * 0.020 >= 1.4:
            break
        await asyncio.sleep(0.05)
    t_interrupt = time.time() + NTP_OFFSET
    session.interrupt()
    await asyncio.sleep(1.5)
    await viewer.close()

    apts = np.array([a[1] for a in viewer.audio])
    t_audio = viewer.sender_times("audio", apts, 48000)
    level = np.array([envelope(a[2], 48000, 0.02).max() for a in viewer.audio])
    loud = np.nonzero(level > 0.02)[0]
    assert len(loud) > 15, "the viewer did not hear the speech"
    t_cut = t_audio[loud[-1]] + 0.020                    # end of the last audible 20 ms frame
    heard = (loud[-1] - loud[0] + 1) * 0.020
    assert heard < len(speech) / 48000 - 1.0, "the speech played on instead of being cut"
    assert abs(t_cut - t_interrupt) < 0.5

    renderer = create_renderer(config)
    roi, closed = mouth_roi(renderer), renderer.render(MotionFrame.neutral())
    t_video = viewer.sender_times("video", np.array([v[1] for v in viewer.video]), 90000)
    activity = mouth_pixel_change(viewer.images(), roi, closed)
    speaking = (t_video > t_cut - 1.2) & (t_video < t_cut - 0.1)
    before = t_video < t_audio[loud[0]] - 0.3
    after = t_video > t_cut + 0.150
    assert speaking.sum() > 15 and before.sum() > 10 and after.sum() > 20
    rest = np.percentile(activity[before], 95)
    assert np.percentile(activity[speaking], 90) > 1.6 * rest, "the avatar did not visibly speak"
    assert activity[after].max() < 1.5 * rest + 1.0, "lips still moving 150 ms after the cut"
    fin = []
    while (e := events.channel.get_nowait()) is not None:
        fin += [e] if e["type"] == "playback.finished" else []
    assert len(fin) == 1 and fin[0]["interrupted"] and 0.8 < fin[0]["position_s"] < 2.2
    assert abs(fin[0]["position_s"] - heard) < 0.4
