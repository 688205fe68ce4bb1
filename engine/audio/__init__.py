"""Audio in the engine: PCM conversion and file loading, exact streaming resampling, voice
activity, text-to-speech.

The two rates the engine is built around are defined here once; ``config.audio`` defaults to them.
"""
OUTPUT_RATE = 48000   # what viewers hear (WebRTC Opus, rendered mp4s)
MODEL_RATE = 16000    # what the motion model, the teacher and the TTS engines' corpus audio use
