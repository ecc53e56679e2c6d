"""The artifact service's routers: the seed's artifact_push/pull and ours under /api/native/v1."""
