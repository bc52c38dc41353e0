"""Signed checkpoints of the transparency log: C2SP tlog-checkpoint bodies in C2SP signed notes.

Why this format: a checkpoint is the log's signed statement "my tree of N leaves has root R". The
C2SP tlog-checkpoint body (origin line, decimal size line, base64 root line, optional extension
lines) wrapped in a C2SP signed note (`golang.org/x/mod/sumdb/note`) is what the Go checksum
database, Sigsum, Sunlight/static-ct logs and the transparency-dev witness network exchange, so a
Studbook checkpoint can be cosigned by existing witnesses and checked with existing tools, and a
monitor needs no Studbook code to hold us to our history.

A note is its text, a blank line, then signature lines `— <name> <base64(key id || sig)>`, em dash
U+2014 and a space first. The key id is the first four bytes of SHA-256(name || 0x0A || 0x01 ||
public key), 0x01 being the Ed25519 signature type. Verifier keys are written
`<name>+<hex key id>+<base64(0x01 || public key)>`, the "vkey" form Go's `note.NewVerifier` reads.

Verification follows the spec's rules: signatures by unknown keys (name or key id differs) are
ignored, which is what lets witnesses add cosignatures and logs rotate keys; a signature by the
known key that fails is a rejection of the whole note; a note with no signature by the known key is
rejected. Failures raise: `UnverifiedSignatureError` for a bad or missing signature (the client's
fault), `CheckpointError` for malformed notes, bodies or keys, `VerificationError` for key material
we cannot use.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .errors import LineageError, UnverifiedSignatureError, VerificationError

__all__ = [
    "MAX_SIGNATURES",
    "SIGNATURE_TYPE_ED25519",
    "Checkpoint",
    "CheckpointError",
    "NoteSignature",
    "key_id",
    "parse_signed_note",
    "parse_vkey",
    "sign_checkpoint",
    "sign_note",
    "verify_checkpoint",
    "verify_note",
    "vkey",
]

SIGNATURE_TYPE_ED25519 = 0x01
"""The signed-note signature type byte of Ed25519, hashed into key ids and vkeys."""

MAX_SIGNATURES = 100
"""Signature lines a note may carry (Go's limit; the spec requires accepting at least 16), so a
hostile note cannot make us parse without bound."""

_SIG_PREFIX = "\u2014 "  # em dash, space
_ROOT_HASH_SIZE = 32
_MAX_SIZE = 1 << 64  # tree sizes are uint64 in every implementation we interoperate with
_DECIMAL = re.compile(r"0|[1-9][0-9]*", re.ASCII)
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")


class CheckpointError(LineageError):
    """A signed note, checkpoint body or verifier key is malformed; `field` names the part."""


@dataclass(frozen=True, slots=True)
class NoteSignature:
    """One signature line of a note, not yet verified."""

    name: str
    key_id: int
    signature: bytes

    def line(self) -> str:
        """The signature line, newline included."""
        raw = self.key_id.to_bytes(4, "big") + self.signature
        return f"{_SIG_PREFIX}{self.name} {base64.b64encode(raw).decode('ascii')}\n"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A log's tree head: `size` leaves with RFC 9162 root `root_hash`, issued by log `origin`.

    Extension lines are opaque to us and kept only so a checkpoint from another log round-trips;
    the spec discourages them because monitors cannot audit them, and Studbook's log writes none.
    """

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin or _CONTROL.search(self.origin):
            raise CheckpointError(
                "origin must be a non-empty line without control characters", field="origin"
            )
        if isinstance(self.size, bool) or not isinstance(self.size, int):
            raise CheckpointError("size must be an integer", field="size")
        if not 0 <= self.size < _MAX_SIZE:
            raise CheckpointError(f"size must be in [0, 2**64), got {self.size}", field="size")
        if not isinstance(self.root_hash, bytes) or len(self.root_hash) != _ROOT_HASH_SIZE:
            raise CheckpointError(f"root_hash must be {_ROOT_HASH_SIZE} bytes", field="root_hash")
        if not isinstance(self.extensions, tuple):
            raise CheckpointError("extensions must be a tuple of lines", field="extensions")
        for i, ext in enumerate(self.extensions):
            if not ext or "\n" in ext or _CONTROL.search(ext):
                raise CheckpointError(
                    f"extensions[{i}] must be a non-empty line without control characters",
                    field="extensions",
                )

    def body(self) -> bytes:
        """The note text: the exact bytes a log signs, every line ending in a newline."""
        lines = [
            self.origin,
            str(self.size),
            base64.b64encode(self.root_hash).decode("ascii"),
            *self.extensions,
        ]
        return "".join(line + "\n" for line in lines).encode("utf-8")

    @classmethod
    def from_body(cls, text: str | bytes) -> Checkpoint:
        """Parse a tlog-checkpoint note text (signatures already stripped).

        Raises:
            CheckpointError: not at least three non-empty newline-terminated lines, or a size or
                root hash line that is not canonical (leading zeroes, non-ASCII digits, bad base64,
                a hash that is not 32 bytes).
        """
        text = _decode(text, field="checkpoint")
        if not text.endswith("\n"):
            raise CheckpointError("checkpoint must end with a newline", field="checkpoint")
        lines = text[:-1].split("\n")
        if len(lines) < 3 or not all(lines):
            raise CheckpointError(
                "checkpoint must be at least three non-empty lines: origin, size, root hash",
                field="checkpoint",
            )
        origin, size_line, root_line, *extensions = lines
        if not _DECIMAL.fullmatch(size_line):
            raise CheckpointError(
                f"size line must be a decimal number without leading zeroes, got {size_line!r}",
                field="size",
            )
        try:
            root = base64.b64decode(root_line.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError) as exc:
            raise CheckpointError(
                f"root hash line is not base64: {exc}", field="root_hash"
            ) from exc
        return cls(origin, int(size_line), root, tuple(extensions))


def _decode(text: str | bytes, *, field: str) -> str:
    if isinstance(text, bytes):
        try:
            return text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CheckpointError(f"{field} is not valid UTF-8: {exc}", field=field) from exc
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:  # lone surrogates: no bytes could have been signed
        raise CheckpointError(f"{field} is not valid UTF-8: {exc}", field=field) from exc
    return text


def _valid_name(name: str) -> bool:
    return bool(name) and "+" not in name and not any(ch.isspace() for ch in name)


def _raw_public_key(public_key: Ed25519PublicKey) -> bytes:
    try:
        return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    except (AttributeError, TypeError, ValueError) as exc:
        raise VerificationError(f"not a usable Ed25519 public key: {exc}") from exc


def _check_name(name: str) -> None:
    if not _valid_name(name):
        raise CheckpointError(
            f"key name must be non-empty, without spaces or '+', got {name!r}", field="name"
        )


def key_id(name: str, public_key: Ed25519PublicKey) -> int:
    """The 32-bit key id: SHA-256(name || 0x0A || 0x01 || public key)[:4], big-endian.

    It only routes a signature to the right key; it is not a security boundary, which is why
    verification always checks the signature against the configured key.
    """
    material = bytes([SIGNATURE_TYPE_ED25519]) + _raw_public_key(public_key)
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + material).digest()
    return int.from_bytes(digest[:4], "big")


def vkey(name: str, public_key: Ed25519PublicKey) -> str:
    """The verifier key string `<name>+<hex key id>+<base64(0x01 || public key)>`.

    Raises:
        CheckpointError: `name` is empty or has spaces or '+' (field `name`).
    """
    _check_name(name)
    material = bytes([SIGNATURE_TYPE_ED25519]) + _raw_public_key(public_key)
    encoded = base64.b64encode(material).decode("ascii")
    return f"{name}+{key_id(name, public_key):08x}+{encoded}"


def parse_vkey(value: str) -> tuple[str, Ed25519PublicKey]:
    """Parse a verifier key string, checking that its key id matches its name and key.

    Raises:
        CheckpointError: the string is malformed, names another algorithm than Ed25519, or its key
            id does not match (field `vkey`).
    """
    name, sep1, rest = value.partition("+")
    hex_id, sep2, b64 = rest.partition("+")
    if not (sep1 and sep2 and _valid_name(name)) or not re.fullmatch(r"[0-9a-f]{8}", hex_id):
        raise CheckpointError(
            "vkey must be <name>+<8 lower-case hex digits>+<base64 key>", field="vkey"
        )
    try:
        material = base64.b64decode(b64.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise CheckpointError(f"vkey key is not base64: {exc}", field="vkey") from exc
    if len(material) != 33 or material[0] != SIGNATURE_TYPE_ED25519:
        raise CheckpointError(
            "vkey key must be the Ed25519 type byte 0x01 and a 32-byte public key", field="vkey"
        )
    public_key = Ed25519PublicKey.from_public_bytes(material[1:])
    if key_id(name, public_key) != int(hex_id, 16):
        raise CheckpointError("vkey key id does not match its name and key", field="vkey")
    return name, public_key


def sign_note(text: str, name: str, private_key: Ed25519PrivateKey) -> str:
    """Sign note `text` with one Ed25519 key and return the signed note.

    Raises:
        CheckpointError: the text does not end in a newline or has control characters, or the
            name is not a valid key name.
    """
    _check_name(name)
    if not text.endswith("\n") or _CONTROL.search(text):
        raise CheckpointError(
            "note text must end with a newline and have no control characters", field="text"
        )
    signature = private_key.sign(text.encode("utf-8"))
    sig = NoteSignature(name, key_id(name, private_key.public_key()), signature)
    return f"{text}\n{sig.line()}"


def sign_checkpoint(checkpoint: Checkpoint, name: str, private_key: Ed25519PrivateKey) -> str:
    """The signed note of `checkpoint`, signed by the log key called `name`.

    The spec asks that `name` match the checkpoint's origin; the caller passes both so that a
    log can keep its key name when its public URL changes.
    """
    return sign_note(checkpoint.body().decode("utf-8"), name, private_key)


def parse_signed_note(note: str | bytes) -> tuple[str, tuple[NoteSignature, ...]]:
    """Split a signed note into its text and its (unverified) signatures.

    The text runs up to and including the newline before the last blank line; the text itself may
    contain blank lines.

    Raises:
        CheckpointError: not UTF-8, a control character other than newline, no blank line before
            the signatures, a signature line of the wrong shape, or more than `MAX_SIGNATURES`.
    """
    note = _decode(note, field="note")
    if _CONTROL.search(note):
        raise CheckpointError("note has a control character other than newline", field="note")
    split = note.rfind("\n\n")
    if split < 0:
        raise CheckpointError("note has no blank line before its signatures", field="note")
    text, block = note[: split + 1], note[split + 2 :]
    if not block.endswith("\n"):
        raise CheckpointError("note must end with a signature line and a newline", field="note")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise CheckpointError(
            f"note has {len(lines)} signatures, more than {MAX_SIGNATURES}", field="signatures"
        )
    sigs = []
    for i, line in enumerate(lines):
        if not line.startswith(_SIG_PREFIX):
            raise CheckpointError(
                f"signature line {i} must start with an em dash and a space", field="signatures"
            )
        name, _, b64 = line[len(_SIG_PREFIX) :].partition(" ")
        try:
            raw = base64.b64decode(b64.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError):
            raw = b""
        if not _valid_name(name) or len(raw) < 5:
            raise CheckpointError(
                f"signature line {i} must be '— <name> <base64(key id || signature)>'",
                field="signatures",
            )
        sigs.append(NoteSignature(name, int.from_bytes(raw[:4], "big"), raw[4:]))
    return text, tuple(sigs)


def _resolve_key(
    name_or_vkey: str, public_key: Ed25519PublicKey | None
) -> tuple[str, Ed25519PublicKey]:
    if public_key is None:
        return parse_vkey(name_or_vkey)
    _check_name(name_or_vkey)
    return name_or_vkey, public_key


def verify_note(
    note: str | bytes, name_or_vkey: str, public_key: Ed25519PublicKey | None = None
) -> str:
    """Verify a signed note against one trusted key and return its text.

    Args:
        note: the signed note.
        name_or_vkey: the key's name, with `public_key`; or, alone, a vkey string.
        public_key: the trusted key, when `name_or_vkey` is a name.

    Raises:
        CheckpointError: the note or vkey is malformed.
        UnverifiedSignatureError: the trusted key's signature fails, or the trusted key did not
            sign (signatures by other keys are ignored).
        VerificationError: `public_key` is not a usable Ed25519 key.
    """
    name, key = _resolve_key(name_or_vkey, public_key)
    kid = key_id(name, key)
    label = f"{name}+{kid:08x}"
    text, sigs = parse_signed_note(note)
    message = text.encode("utf-8")
    verified = False
    for sig in sigs:
        if sig.name != name or sig.key_id != kid:
            continue  # another key: a witness cosignature, a rotated key; ignored by the spec
        try:
            key.verify(sig.signature, message)
        except InvalidSignature as exc:
            raise UnverifiedSignatureError(
                f"signature by {label} does not verify: the note was altered or forged",
                keyid=label,
            ) from exc
        verified = True
    if not verified:
        named = ", ".join(f"{s.name}+{s.key_id:08x}" for s in sigs)
        raise UnverifiedSignatureError(
            f"the note is not signed by {label} (signed by: {named})", keyid=label
        )
    return text


def verify_checkpoint(
    note: str | bytes,
    name_or_vkey: str,
    public_key: Ed25519PublicKey | None = None,
    *,
    origin: str | None = None,
) -> Checkpoint:
    """Verify a signed checkpoint against the log's key and return the checkpoint it vouches for.

    Args:
        note: the signed note.
        name_or_vkey: the log key's name, with `public_key`; or, alone, a vkey string.
        public_key: the log's key, when `name_or_vkey` is a name.
        origin: the log this checkpoint must come from; checked when given, so that a key shared
            by two logs cannot pass one log's checkpoint off as the other's.

    Raises:
        CheckpointError: the note, body or vkey is malformed, or the origin is not `origin`.
        UnverifiedSignatureError: the log's signature fails or is missing.
        VerificationError: `public_key` is not a usable Ed25519 key.
    """
    checkpoint = Checkpoint.from_body(verify_note(note, name_or_vkey, public_key))
    if origin is not None and checkpoint.origin != origin:
        raise CheckpointError(
            f"checkpoint is from log {checkpoint.origin!r}, expected {origin!r}", field="origin"
        )
    return checkpoint
