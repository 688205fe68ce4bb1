"""The streaming pipeline: bounded channels and the stages a Session runs."""
