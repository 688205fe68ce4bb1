"""A real aiortc peer ↔ the server over loopback: echo mode, frame rate, pts, A/V sync.

The peer sends espeak-ng speech as its microphone; the avatar speaks it back.
Received audio and video are put on the sender's clock through the RTCP
sender reports (as a browser does for lip sync) and the audio envelope is
cross-correlated with the mouth region's change in the received frames.
"""
import asyncio

import numpy as np
from aiohttp import ClientSession

from engine.motion.space import MotionFrame
from engine.pipeline.render import create_renderer
from engine.server import PEERS_KEY

from media_probe import best_lag, envelope, mouth_pixel_change, mouth_roi, speech_bursts
from rtc_client import Viewer


async def test_echo_stream_rate_pts_and_lip_sync(server):
    base, app, config = server.http_url, server.app, server.config
    audio, spans = speech_bursts(config, texts=("Hello there.", "How are you today?", "One, two, three."),
                                 gap_s=1.0)
    renderer = create_renderer(config)
    roi, closed = mouth_roi(renderer), renderer.render(MotionFrame.neutral())
    viewer = Viewer(mic=audio)
    async with ClientSession() as http:
        answer = await viewer.connect(http, base, mode="echo")
        assert answer["type"] == "answer" and answer["session_id"]
        await asyncio.sleep(len(audio) / 48000 + 1.0)
        (peer,) = app[PEERS_KEY]
        assert peer.bitrate_applied, "could not start the video encoder at video.bitrate_kbps"
        health = await (await http.get(f"{base}/healthz")).json()
        metrics = await (await http.get(f"{base}/metrics")).text()
    await viewer.close()

    assert health == {"ok": True, "sessions": 1}
    assert "facecast_sessions 1.0" in metrics
    for series in ('facecast_stage_seconds_bucket{le="0.04",stage="render"}', 'facecast_frames_total{kind="repeated"}',
                   "facecast_deadline_misses_total", 'facecast_dropped_total{what="video_frame"}',
                   "facecast_audio_to_frame_seconds_count"):
        assert series in metrics, series
    rendered = float(metrics.split('facecast_frames_total{kind="rendered"} ')[1].split()[0])
    assert rendered > 50
    # frame count and rate: by arrival and by pts
    arrivals = np.array([v[0] for v in viewer.video])
    pts = np.array([v[1] for v in viewer.video])
    duration = arrivals[-1] - arrivals[0]
    assert duration > len(audio) / 48000 - 0.5
    assert (len(arrivals) - 1) / duration >= 20.0
    assert np.all(np.diff(pts) > 0), "video pts must increase"
    assert np.median(np.diff(pts)) == 90000 // config.video.fps
    apts = np.array([a[1] for a in viewer.audio])
    assert np.all(np.diff(apts) > 0) and np.median(np.diff(apts)) == 960
    # the mouth moves while the echo speaks and rests in the silences
    video_t = viewer.sender_times("video", pts, 90000) + 0.5 / config.video.fps   # frame centres
    audio_t = viewer.sender_times("audio", apts, 48000)
    activity = mouth_pixel_change(viewer.images(), roi, closed)
    env = np.concatenate([envelope(a[2], 48000, 0.01) for a in viewer.audio])
    env_t = np.concatenate([t + 0.005 + 0.01 * np.arange(len(a[2]) // 480) for t, a in zip(audio_t, viewer.audio)])
    loud = np.interp(video_t, env_t, env) > 0.05
    quiet = np.interp(video_t, env_t, np.convolve(env, np.ones(31) / 31, "same")) < 1e-3
    assert loud.sum() > 20 and quiet.sum() > 20
    # (the silent level includes head sway and the model's resting mouth: ~2.3x measured)
    assert activity[loud].mean() > 1.6 * activity[quiet].mean()
    # audio/video offset on the sender's clock (includes the generator's deliberate lip lead)
    lag, corr = best_lag(env_t, env, video_t, activity)
    assert corr > 0.4, f"mouth activity does not follow the audio (r={corr:.2f})"
    assert abs(lag) <= 0.040, f"audio/video offset {lag * 1000:.0f} ms"
