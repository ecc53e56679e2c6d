"""The artifact service: artifact bytes on S3 or in a local folder, addressed by their md5."""
