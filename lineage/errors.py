"""Errors of the pure lineage domain.

One base class, so callers can catch everything the domain raises; each error carries the
attributes a caller needs to act on it (which field, which artifact), not only text. The web layer
maps these to HTTP in one place (`registry/errors.py`); nothing here knows about HTTP.
"""

from __future__ import annotations


class LineageError(Exception):
    """Base of every error raised by `lineage`."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidEnvelopeError(LineageError):
    """The DSSE envelope is malformed: not JSON, missing fields, bad base64, wrong payload type."""


class InvalidStatementError(LineageError):
    """The signed payload is not a Studbook in-toto statement of the expected shape."""


class UnverifiedSignatureError(LineageError):
    """A signature was checked and is not valid for the given key: the client's fault."""

    def __init__(self, message: str, *, keyid: str | None = None, index: int | None = None) -> None:
        super().__init__(message, field="signatures")
        self.keyid = keyid
        self.index = index  # which signature of the envelope, when one was checked


class VerificationError(LineageError):
    """Verification could not run (bad key material on our side): the server's fault."""


class RelationError(LineageError):
    """A relation joins kinds it may not join, e.g. a model `generated_by` a model."""

    def __init__(self, message: str, *, relation: str, child_kind: str, parent_kind: str) -> None:
        super().__init__(message, field="parents")
        self.relation = relation
        self.child_kind = child_kind
        self.parent_kind = parent_kind


class CycleError(LineageError):
    """Adding the edges would make an artifact its own ancestor."""

    def __init__(self, message: str, *, path: tuple[str, ...]) -> None:
        super().__init__(message, field="parents")
        self.path = path


class DigestError(LineageError):
    """A digest string is malformed or a path cannot be digested."""
