"""The one place facecast reaches inside aiortc (the video encoder's start bitrate) still works:
two real aiortc peers on loopback; fails as soon as aiortc renames or removes the encoder."""
import asyncio

from aiortc import RTCConfiguration, RTCPeerConnection, VideoStreamTrack

from engine.transports.encoder_bitrate import encoder_of, set_encoder_bitrate
from rtc_client import use_loopback_ice


async def test_the_video_encoder_bitrate_can_be_set_on_a_real_sender(monkeypatch):
    use_loopback_ice(monkeypatch)
    sender_pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    receiver_pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    sender = sender_pc.addTrack(VideoStreamTrack())
    received = asyncio.get_running_loop().create_future()

    @receiver_pc.on("track")
    def _track(track):
        async def pull():
            await track.recv()
            if not received.done():
                received.set_result(True)
        asyncio.ensure_future(pull())

    try:
        assert set_encoder_bitrate(sender, 1_500_000) is False      # no frame encoded yet
        await sender_pc.setLocalDescription(await sender_pc.createOffer())
        await receiver_pc.setRemoteDescription(sender_pc.localDescription)
        await receiver_pc.setLocalDescription(await receiver_pc.createAnswer())
        await sender_pc.setRemoteDescription(receiver_pc.localDescription)
        await asyncio.wait_for(received, 20)                         # the encoder exists now
        encoder = encoder_of(sender)
        assert encoder is not None, "aiortc no longer keeps the encoder where facecast looks for it"
        assert hasattr(encoder, "target_bitrate"), "aiortc's encoder has no target_bitrate any more"
        assert set_encoder_bitrate(sender, 1_500_000) is True
        assert encoder.target_bitrate == 1_500_000
    finally:
        await sender_pc.close()
        await receiver_pc.close()
