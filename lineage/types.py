"""Value types of the lineage graph.

Artifacts are identified by content (a sha256 digest), not by name: two registrations of the same
bytes are the same artifact whatever they are called. Relations form a closed set; each knows its
family (weights lineage vs data lineage) and which kinds of artifact it may join, so that the rule
"a dataset cannot be fine-tuned from a model" lives in one table instead of in every caller.

Names and versions have a grammar (`check_name`, `check_version`) because they travel: into
URLs (`/v1/artifacts/<name>@<version>/lineage`), terminals, DOT graphs, SBOMs, and the review
pages people decide on. So a name is text a person can read and compare:

- Unicode scalar values in NFC (a name that is not NFC is refused, not normalised: what is stored
  is exactly what was signed, so the signer must send the normal form);
- printable characters only: no control characters (C0, C1), no whitespace, no bidirectional
  controls (U+202A-U+202E, U+2066-U+2069, U+200E, U+200F, U+061C) and no zero-width characters
  (U+200B-U+200D, U+2060, U+FEFF), which make two different names look the same;
  no private-use or unassigned code points;
- no `@` (it separates name and version) and no backslash;
- a name is a relative, '/'-separated path of non-empty segments, none of them `.` or `..`
  (so no leading or trailing '/', no '//'), and does not start with `~` or a drive (`C:`);
- a version holds no '/', and is not `.` or `..`;
- at most `MAX_NAME` (200) characters for a name and `MAX_VERSION` (100) for a version.

Why refuse rather than clean up: a silently rewritten name would no longer match the signed
statement, and the record's value is that the two are the same bytes.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from enum import StrEnum

from .errors import DigestError, InvalidStatementError, RelationError

_HEX64 = re.compile(r"^[0-9a-f]{64}$")

MAX_NAME = 200
MAX_VERSION = 100

# Bidirectional formatting controls: embeddings and overrides (U+202A-U+202E), isolates
# (U+2066-U+2069) and the implicit marks (LRM, RLM, ALM). They reorder what a reader sees.
BIDI_CONTROLS = frozenset(
    "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
)
# Zero-width characters: invisible, so "owl" and "o\u200bwl" would look identical.
ZERO_WIDTH = frozenset("\u200b\u200c\u200d\u2060\ufeff")


class ArtifactKind(StrEnum):
    """What an artifact is."""

    MODEL = "model"
    DATASET = "dataset"


class RelationFamily(StrEnum):
    """Weights lineage (the child's weights come from the parent's) or data lineage."""

    WEIGHTS = "weights"
    DATA = "data"


class Relation(StrEnum):
    """An edge from child to parent. Values are the wire names."""

    FINE_TUNED_FROM = "fine_tuned_from"
    ADAPTER_OF = "adapter_of"
    MERGED_FROM = "merged_from"
    QUANTIZED_FROM = "quantized_from"
    PROMPTED_FROM = "prompted_from"
    INITIALIZED_FROM = "initialized_from"
    TRAINED_ON = "trained_on"
    GENERATED_BY = "generated_by"
    DERIVED_FROM = "derived_from"

    @property
    def family(self) -> RelationFamily:
        """Whether the relation carries weights or data lineage."""
        return _RULES[self][0]

    @property
    def child_kind(self) -> ArtifactKind:
        """The kind the child of this relation must be."""
        return _RULES[self][1]

    @property
    def parent_kind(self) -> ArtifactKind:
        """The kind the parent of this relation must be."""
        return _RULES[self][2]

    @property
    def is_weights(self) -> bool:
        """True for the six weights-lineage relations."""
        return self.family is RelationFamily.WEIGHTS

    def check_kinds(self, child: ArtifactKind, parent: ArtifactKind) -> None:
        """Raise `RelationError` unless this relation may join `child` to `parent`.

        Raises:
            RelationError: the kinds do not fit, naming what was expected.
        """
        if child is not self.child_kind or parent is not self.parent_kind:
            raise RelationError(
                f"relation {self.value!r} joins a {self.child_kind.value} (child) to a "
                f"{self.parent_kind.value} (parent), got a {child.value} to a {parent.value}",
                relation=self.value,
                child_kind=child.value,
                parent_kind=parent.value,
            )


_M, _D = ArtifactKind.MODEL, ArtifactKind.DATASET
_W, _DL = RelationFamily.WEIGHTS, RelationFamily.DATA
_RULES: dict[Relation, tuple[RelationFamily, ArtifactKind, ArtifactKind]] = {
    Relation.FINE_TUNED_FROM: (_W, _M, _M),
    Relation.ADAPTER_OF: (_W, _M, _M),
    Relation.MERGED_FROM: (_W, _M, _M),
    Relation.QUANTIZED_FROM: (_W, _M, _M),
    Relation.PROMPTED_FROM: (_W, _M, _M),
    Relation.INITIALIZED_FROM: (_W, _M, _M),
    Relation.TRAINED_ON: (_DL, _M, _D),
    Relation.GENERATED_BY: (_DL, _D, _M),
    Relation.DERIVED_FROM: (_DL, _D, _D),
}

WEIGHTS_RELATIONS: frozenset[Relation] = frozenset(r for r in Relation if r.is_weights)
DATA_RELATIONS: frozenset[Relation] = frozenset(r for r in Relation if not r.is_weights)


def check_digest(digest: str, *, field_name: str = "digest") -> str:
    """Return `digest` as 64 lowercase hex characters, accepting an optional `sha256:` prefix.

    Raises:
        DigestError: the value is not a sha256 hex digest.
    """
    value = digest[7:] if digest.startswith("sha256:") else digest
    if not _HEX64.fullmatch(value):
        raise DigestError(
            f"{field_name} must be 64 lowercase hex characters (sha256), got {digest!r}",
            field=field_name,
        )
    return value


def _refuse(field_name: str, message: str) -> InvalidStatementError:
    return InvalidStatementError(f"{field_name} {message}", field=field_name)


def _codepoint(c: str) -> str:
    return f"U+{ord(c):04X}"


def check_scalar_text(value: str, *, field_name: str) -> str:
    """Return `value` if it is a sequence of Unicode scalar values without NUL.

    Lone surrogates cannot be encoded as UTF-8 (so no JSON answer could carry them) and NUL
    cannot be stored in a PostgreSQL text column: either would make a stored record unservable.

    Raises:
        InvalidStatementError: naming `field_name` and the offending code point.
    """
    if "\x00" in value:
        raise _refuse(field_name, "contains a NUL character (U+0000)")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise _refuse(
            field_name,
            f"contains a lone surrogate ({_codepoint(value[exc.start])}); only Unicode scalar "
            "values are accepted",
        ) from None
    return value


def _check_visible(value: str, field_name: str, *, allow: str = "") -> None:
    """Refuse what makes text unreadable or misleading: non-NFC, invisible or control
    characters (`allow` lists the exceptions, e.g. newlines in prose)."""
    check_scalar_text(value, field_name=field_name)
    if not unicodedata.is_normalized("NFC", value):
        raise _refuse(
            field_name,
            "must be in Unicode normal form C (NFC); normalise it before signing "
            f"(e.g. unicodedata.normalize('NFC', ...)); got {value!r}",
        )
    for c in value:
        if c in allow:
            continue
        if c in BIDI_CONTROLS:
            raise _refuse(
                field_name, f"contains a bidirectional control character ({_codepoint(c)})"
            )
        if c in ZERO_WIDTH:
            raise _refuse(field_name, f"contains a zero-width character ({_codepoint(c)})")
        if not c.isprintable():
            raise _refuse(
                field_name,
                f"contains a control, format, private-use or unassigned character "
                f"({_codepoint(c)})",
            )


def check_text(
    value: object, *, field_name: str, max_len: int, multiline: bool = False, empty: bool = False
) -> str:
    """Return `value` if it is readable text: a string of at most `max_len` characters, NFC,
    printable (spaces allowed; tabs and newlines too when `multiline`), with no bidirectional
    controls or zero-width characters. For traits, reasons and references, which people read.

    Raises:
        InvalidStatementError: naming `field_name` and what was expected.
    """
    if not isinstance(value, str) or (not empty and not value.strip()):
        raise _refuse(field_name, "must be a non-empty string")
    if len(value) > max_len:
        raise _refuse(field_name, f"must be at most {max_len} characters, got {len(value)}")
    _check_visible(value, field_name, allow="\t\n\r" if multiline else "")
    return value


def _check_token(value: object, field_name: str, max_len: int, what: str) -> str:
    """The rules names and versions share (see the module docstring)."""
    if not isinstance(value, str) or not value:
        raise _refuse(field_name, f"must be a non-empty string ({what})")
    if len(value) > max_len:
        raise _refuse(field_name, f"must be at most {max_len} characters, got {len(value)}")
    _check_visible(value, field_name)
    for c in value:
        if c.isspace():
            raise _refuse(field_name, f"contains whitespace ({_codepoint(c)})")
        if c == "@":
            raise _refuse(field_name, "contains '@', which separates name and version")
        if c == "\\":
            raise _refuse(field_name, "contains a backslash")
    return value


_DRIVE = re.compile(r"^[A-Za-z]:")


def check_name(value: object, *, field_name: str = "name") -> str:
    """Return `value` if it is a valid artifact name (see the module docstring for the grammar).

    Raises:
        InvalidStatementError: naming `field_name` and the rule broken.
    """
    name = _check_token(value, field_name, MAX_NAME, "an artifact name, e.g. acme/owl-teacher")
    if name.startswith("/"):
        raise _refuse(field_name, f"must be a relative name, not an absolute path: {name!r}")
    if name.startswith("~") or _DRIVE.match(name):
        raise _refuse(field_name, f"must not start with '~' or a drive letter: {name!r}")
    for segment in name.split("/"):
        if not segment:
            raise _refuse(field_name, f"has an empty '/'-separated segment: {name!r}")
        if segment in (".", ".."):
            raise _refuse(field_name, f"has a {segment!r} path segment: {name!r}")
    return name


def check_version(value: object, *, field_name: str = "version") -> str:
    """Return `value` if it is a valid artifact version: a name's rules, with no '/' at all
    (so `<name>@<version>/<view>` in a URL is unambiguous).

    Raises:
        InvalidStatementError: naming `field_name` and the rule broken.
    """
    version = _check_token(value, field_name, MAX_VERSION, "a version, e.g. 1 or 2025-06-01")
    if "/" in version:
        raise _refuse(field_name, f"must not contain '/': {version!r}")
    if version in (".", ".."):
        raise _refuse(field_name, f"must not be {version!r}")
    return version


def check_hex_digest(value: object, *, field_name: str = "digest") -> str:
    """Return `value` if it is exactly 64 lowercase hex characters: the form of a sha256 value
    in an in-toto DigestSet, which has no room for a `sha256:` prefix (the key says the
    algorithm).

    Raises:
        DigestError: anything else, naming `field_name`.
    """
    if not isinstance(value, str) or not _HEX64.fullmatch(value):
        raise DigestError(
            f"{field_name} must be 64 lowercase hex characters (a DigestSet value, without a "
            f"'sha256:' prefix), got {value!r}",
            field=field_name,
        )
    return value


@dataclass(frozen=True, slots=True)
class ArtifactRef:
    """A model or dataset: its content digest plus the human name and version it was given."""

    kind: ArtifactKind
    name: str
    version: str
    digest: str
    opaque: bool = False

    def __post_init__(self) -> None:
        check_digest(self.digest)

    @property
    def label(self) -> str:
        """`name@version`, the human reference."""
        return f"{self.name}@{self.version}"


@dataclass(frozen=True, slots=True)
class Edge:
    """child -> parent by `relation`; endpoints are artifact digests."""

    child: str
    parent: str
    relation: Relation


@dataclass(frozen=True, slots=True)
class ParentLink:
    """A declared parent of an artifact being registered."""

    relation: Relation
    digest: str


@dataclass(frozen=True, slots=True)
class Registration:
    """What one registration statement says: an artifact and its declared parents."""

    artifact: ArtifactRef
    parents: tuple[ParentLink, ...] = ()
    metadata: dict[str, object] = field(default_factory=dict, hash=False, compare=False)

    def edges(self) -> tuple[Edge, ...]:
        """The edges this registration adds, child first."""
        return tuple(Edge(self.artifact.digest, p.digest, p.relation) for p in self.parents)
