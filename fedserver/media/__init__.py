"""Uploaded media: image processing (Pillow), blurhash, storage under the data directory, the upload service."""
