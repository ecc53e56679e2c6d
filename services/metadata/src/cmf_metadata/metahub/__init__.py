"""Metahub: this server pulls other CMF servers' metadata (docs/metahub.md).

FastAPI-free: :mod:`.peers` registers peers and talks to them, :mod:`.sync` pulls a peer's
changes and merges them through the push, :mod:`.schedules` computes and runs schedules.
"""
