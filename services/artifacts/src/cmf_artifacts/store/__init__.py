"""Every SQL statement of the artifact service: the blob catalogue and the upload sessions."""
