"""Errors the pack raises on purpose.

Each message names the file, folder or image involved and what the user can do about it; the
ComfyUI nodes show them unchanged, so they are written for artists, not for developers.
"""


class PulidError(Exception):
    """Base class: anything the user can fix by changing an input, a file or a setting."""


class PulidFormatError(PulidError):
    """A model file is not in a format this pack can load (wrong model, truncated, unsafe pickle)."""


class ModelFileError(PulidError):
    """A model file or folder is missing or unreadable."""


class FaceNotFoundError(PulidError):
    """No face could be found in an input image."""

    def __init__(self, message, image_index=None):
        super().__init__(message)
        self.image_index = image_index


class EmbeddingMismatchError(PulidError):
    """Saved ID embeddings do not fit the PuLID model they are used with."""
