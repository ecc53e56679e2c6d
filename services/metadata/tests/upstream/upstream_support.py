"""What the upstream v1 tests share: the envelope's shape (cmf_testing.envelopes); the pipeline,
bodies, pushes and row counts are metadata_support's."""

from __future__ import annotations

from cmf_testing.envelopes import ENVELOPE_KEYS, TIMESTAMP, enveloped, failed, invalid

__all__ = ["ENVELOPE_KEYS", "TIMESTAMP", "enveloped", "failed", "invalid"]
