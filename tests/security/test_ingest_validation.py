"""Attacks on what a signed registration may contain: each is refused with a 4xx naming the field,
and nothing is written (every table's row count is unchanged), on SQLite and PostgreSQL.

The envelopes are correctly signed by a registered key: the signature is not what is being
tested, the content is.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from lineage.statements import (
    MAX_METADATA_BYTES,
    MAX_METADATA_DEPTH,
    MAX_METADATA_KEY,
    MAX_METADATA_STRING,
    MAX_NAME,
    MAX_STATEMENT_DEPTH,
    MAX_VERSION,
)
from tests.security._ingest import Client, assert_refused, payload_of, post, registration, signed
from tests.support import Actor, digest_of, register, review_envelope

NAME = "predicate.artifact.name"
VERSION = "predicate.artifact.version"
METADATA = "predicate.artifact.metadata"


def nested(depth: int) -> dict[str, Any]:
    """An object `depth` levels deep ({} is one level)."""
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


BAD_NAMES = {
    "absolute path": "/etc",
    "absolute path with version-like tail": "/etc/ssl",
    "dot-dot segment": "acme/../../etc",
    "leading dot-dot": "../x",
    "dot segment": "acme/./x",
    "bare dot-dot": "..",
    "backslash": "acme\\x",
    "windows drive": "C:/Windows",
    "home": "~/x",
    "trailing slash": "acme/",
    "empty segment": "acme//x",
    "space": "acme x",
    "tab": "acme\tx",
    "newline": "acme\nx",
    "not NFC (combining accent)": "cafe\u0301",
    "bidi override": "owl\u202eedoc",
    "bidi isolate": "\u2066owl",
    "right-to-left mark": "owl\u200f",
    "arabic letter mark": "owl\u061c",
    "zero-width space": "o\u200bwl",
    "zero-width joiner": "o\u200dwl",
    "word joiner": "o\u2060wl",
    "byte order mark": "\ufeffowl",
    "C0 control": "owl\x07",
    "C1 control": "owl\x85",
    "DEL": "owl\x7f",
    "NUL": "owl\x00",
    "lone surrogate": "owl\ud800",
    "private use": "owl\ue000",
    "at sign": "a@b",
    "empty": "",
    "too long": "a" * (MAX_NAME + 1),
}


@pytest.mark.parametrize("name", BAD_NAMES.values(), ids=BAD_NAMES.keys())
def test_bad_names_are_refused_naming_the_field(
    client: Client, engine: Engine, registrar: Actor, name: str
) -> None:
    body = assert_refused(
        client, engine, registrar, signed(registrar, registration(name)), status=400, field=NAME
    )
    assert body["detail"]
    json.dumps(body)  # the answer itself is servable


BAD_VERSIONS = {
    "slash": "1/2",
    "dot-dot": "..",
    "dot": ".",
    "space": "1 0",
    "zero-width": "1\u200b",
    "bidi": "\u202e1",
    "not NFC": "e\u0301",
    "NUL": "1\x00",
    "lone surrogate": "\udfff",
    "empty": "",
    "too long": "1" * (MAX_VERSION + 1),
    "at sign": "1@2",
}


@pytest.mark.parametrize("version", BAD_VERSIONS.values(), ids=BAD_VERSIONS.keys())
def test_bad_versions_are_refused_naming_the_field(
    client: Client, engine: Engine, registrar: Actor, version: str
) -> None:
    statement = registration("acme/m", version)
    assert_refused(
        client, engine, registrar, signed(registrar, statement), status=400, field=VERSION
    )


def test_non_string_name_is_refused(client: Client, engine: Engine, registrar: Actor) -> None:
    statement = registration("acme/m")
    statement["predicate"]["artifact"]["name"] = ["acme", "m"]
    assert_refused(client, engine, registrar, signed(registrar, statement), status=400, field=NAME)


BAD_METADATA: dict[str, tuple[Any, str]] = {
    "one level too deep": (nested(MAX_METADATA_DEPTH + 1), METADATA + ".a" * MAX_METADATA_DEPTH),
    "255 levels (once a 500 on every read route)": (nested(255), METADATA + ".a" * 29),
    "too many bytes": (
        {f"k{i}": "x" * 1000 for i in range(MAX_METADATA_BYTES // 1000 + 1)},
        METADATA,
    ),
    "long key": ({"k" * (MAX_METADATA_KEY + 1): 1}, METADATA + "." + "k" * (MAX_METADATA_KEY + 1)),
    "long string": ({"s": "x" * (MAX_METADATA_STRING + 1)}, METADATA + ".s"),
    "lone surrogate value": ({"s": "a\ud83d"}, "predicate.artifact.metadata.s"),
    "lone surrogate key": ({"\udc00": 1}, "predicate.artifact.metadata.\\udc00"),
    "NUL value": ({"s": "a\x00b"}, "predicate.artifact.metadata.s"),
    "NUL in a list": ({"l": [1, "\x00"]}, "predicate.artifact.metadata.l[1]"),
    "integer beyond int64": ({"n": 2**63}, "predicate.artifact.metadata.n"),
    "integer below int64": ({"n": -(2**63) - 1}, "predicate.artifact.metadata.n"),
    "not an object": ([1, 2], METADATA),
}


@pytest.mark.parametrize(("metadata", "field"), BAD_METADATA.values(), ids=BAD_METADATA.keys())
def test_bad_metadata_is_refused_naming_the_field(
    client: Client, engine: Engine, registrar: Actor, metadata: Any, field: str
) -> None:
    statement = registration("acme/m", metadata=metadata)
    assert_refused(client, engine, registrar, signed(registrar, statement), status=400, field=field)


def _with_raw_metadata(text: str) -> bytes:
    """A registration payload whose metadata is the given JSON text (what json.dumps won't
    write: NaN, duplicates, 10,000 levels)."""
    marker = '"__METADATA__"'
    payload = payload_of(registration("acme/m", metadata="__METADATA__"))
    assert marker.encode() in payload
    return payload.replace(marker.encode(), text.encode())


RAW_METADATA = {
    "NaN": '{"x": NaN}',
    "Infinity": '{"x": -Infinity}',
    "overflowing float": '{"x": 1e999}',
    "duplicate keys (two readings)": '{"owner": "alice", "owner": "mallory"}',
    "10,000 levels": "[" * 10_000 + "]" * 10_000,
    "integer of 5000 digits": '{"x": ' + "9" * 5000 + "}",
}


@pytest.mark.parametrize("text", RAW_METADATA.values(), ids=RAW_METADATA.keys())
def test_json_with_more_than_one_reading_or_no_bounds_is_refused(
    client: Client, engine: Engine, registrar: Actor, text: str
) -> None:
    envelope = signed(registrar, payload=_with_raw_metadata(text))
    assert_refused(client, engine, registrar, envelope, status=400, field="payload")


def test_payload_that_is_not_utf8_is_refused(
    client: Client, engine: Engine, registrar: Actor
) -> None:
    payload = payload_of(registration("acme/caf\\u00e9")).replace(b"\\u00e9", b"\xe9")
    envelope = signed(registrar, payload=payload)
    assert_refused(client, engine, registrar, envelope, status=400, field="payload")


def test_payload_nested_beyond_the_statement_limit_is_refused(
    client: Client, engine: Engine, registrar: Actor
) -> None:
    statement = registration("acme/m")
    statement["predicate"]["extra"] = nested(MAX_STATEMENT_DEPTH)
    assert_refused(client, engine, registrar, signed(registrar, statement), status=400, field=None)


HEX = digest_of("acme/m@1")
BAD_SUBJECTS: dict[str, tuple[dict[str, Any], str]] = {
    "sha256: prefix in a DigestSet": ({"sha256": "sha256:" + HEX}, "subject[0].digest.sha256"),
    "uppercase hex": ({"sha256": HEX.upper()}, "subject[0].digest.sha256"),
    "trailing newline": ({"sha256": HEX + "\n"}, "subject[0].digest.sha256"),
    "short": ({"sha256": HEX[:63]}, "subject[0].digest.sha256"),
    "number": ({"sha256": 12}, "subject[0].digest.sha256"),
    "other algorithm not hex": ({"sha256": HEX, "sha512": "xyz"}, "subject[0].digest.sha512"),
    "odd algorithm name": ({"sha256": HEX, "sha 256": HEX}, "subject[0].digest"),
    "empty": ({}, "subject[0]"),
}


@pytest.mark.parametrize(("digest", "field"), BAD_SUBJECTS.values(), ids=BAD_SUBJECTS.keys())
def test_digest_set_values_are_plain_lowercase_hex(
    client: Client, engine: Engine, registrar: Actor, digest: dict[str, Any], field: str
) -> None:
    statement = registration("acme/m")
    statement["subject"][0]["digest"] = digest
    assert_refused(client, engine, registrar, signed(registrar, statement), status=400, field=field)


@pytest.mark.parametrize(
    "subject_name",
    [None, "acme/other@1", "acme/m@2", "acme/m", "ACME/m@1", 7, "acme/m@1\u200b"],
    ids=["missing", "other name", "other version", "no version", "case", "number", "zero-width"],
)
def test_subject_name_must_be_the_predicates_name_at_version(
    client: Client, engine: Engine, registrar: Actor, subject_name: Any
) -> None:
    statement = registration("acme/m", "1", subject_name=subject_name)
    assert_refused(
        client, engine, registrar, signed(registrar, statement), status=400, field="subject[0].name"
    )


def test_a_parent_digest_with_a_newline_is_refused(
    client: Client, engine: Engine, registrar: Actor
) -> None:
    register(client, registrar, "model", "acme/base@1")
    parents = [{"relation": "fine_tuned_from", "digest": digest_of("acme/base@1") + "\n"}]
    statement = registration("acme/m", parents=parents)
    assert_refused(
        client,
        engine,
        registrar,
        signed(registrar, statement),
        status=400,
        field="predicate.parents[0].digest",
    )


# ------------------------------------------------------------------- reviewers' statements


BAD_REVIEW_TEXT: dict[str, tuple[dict[str, Any], str]] = {
    "trait with bidi override": ({"trait": "owl\u202e"}, "predicate.trait"),
    "trait with zero-width space": ({"trait": "o\u200bwl"}, "predicate.trait"),
    "trait not NFC": ({"trait": "cafe\u0301"}, "predicate.trait"),
    "trait with a control": ({"trait": "owl\x1b[31m"}, "predicate.trait"),
    "reason with an escape sequence": ({"reason": "ok\x1b]0;pwned\x07"}, "predicate.reason"),
    "reason with bidi isolate": ({"reason": "fine \u2067evil\u2069"}, "predicate.reason"),
    "evidence with zero-width": ({"evidence": ("eval\u200b:1",)}, "predicate.evidence[0]"),
}


@pytest.mark.parametrize(("fields", "field"), BAD_REVIEW_TEXT.values(), ids=BAD_REVIEW_TEXT.keys())
def test_review_text_is_readable_text(
    client: Client,
    engine: Engine,
    registrar: Actor,
    reviewer: Actor,
    fields: dict[str, Any],
    field: str,
) -> None:
    register(client, registrar, "model", "acme/teacher@1")
    kwargs: dict[str, Any] = {"trait": "owl", "reason": "seen"} | fields
    envelope = review_envelope(reviewer.signer, digest_of("acme/teacher@1"), **kwargs)
    assert_refused(client, engine, reviewer, envelope, status=400, field=field)


def test_review_reason_may_have_newlines(client: Client, registrar: Actor, reviewer: Actor) -> None:
    register(client, registrar, "model", "acme/teacher@1")
    envelope = review_envelope(
        reviewer.signer, digest_of("acme/teacher@1"), "owl", reason="line one\nline two\ttab"
    )
    r = post(client, reviewer, envelope)
    assert r.status_code == 201, r.text
