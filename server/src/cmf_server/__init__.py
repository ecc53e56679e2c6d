"""The ``cmf-server`` process: its command line, the embedded server that composes every
service behind the gateway in one process (on a private PostgreSQL unless ``DATABASE_URL`` is
set), and the lineage rebuild/verify commands."""
