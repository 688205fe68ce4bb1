"""Triton GPU paths. Nothing here imports triton until a submodule is imported."""
