"""Audio in the engine: validation, exact streaming resampling, voice activity."""
