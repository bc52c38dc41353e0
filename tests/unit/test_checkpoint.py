"""Signed checkpoints: C2SP tlog-checkpoint bodies in C2SP signed notes.

Interoperability is checked against notes produced by other implementations: the
`golang.org/x/mod/sumdb/note` test vectors (the "PeterNeumann" and "EnochRoot" keys, note_test.go)
and a real checkpoint of the Go checksum database (sum.golang.org), as used in
transparency-dev/formats log/note_test.go `TestSumDBNoteParsing`.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from lineage.checkpoint import (
    MAX_SIGNATURES,
    Checkpoint,
    CheckpointError,
    NoteSignature,
    key_id,
    parse_signed_note,
    parse_vkey,
    sign_checkpoint,
    sign_note,
    verify_checkpoint,
    verify_note,
    vkey,
)
from lineage.errors import LineageError, UnverifiedSignatureError
from lineage.merkle import MemoryTree

VECTORS = Path(__file__).parent / "vectors"

# golang.org/x/mod/sumdb/note note_test.go
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
NOTE_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
PETER_SIG = (
    "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotp"
    "RZb6KE6RyyBwJnAM=\n"
)
ENOCH_SIG = (
    "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33W"
    "Wd1RvMc+QQ=\n"
)

# The Go checksum database's key (cmd/go/internal/modfetch/key.go) and one of its checkpoints,
# from transparency-dev/formats log/note_test.go.
SUMDB_VKEY = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"
SUMDB_NOTE = (
    "go.sum database tree\n"
    "6476701\n"
    "mb8QLQIs0Z0yP5Cstq6guj87oXWeC9gEM8oVikmm9Wk=\n"
    "\n"
    "— sum.golang.org Az3grsLX85Gz+s1SiTbgkuqxgItqFq7gsMUEyVnrsa9LM7Us9S+1xbFIGu95949rj4nPRYfvim"
    "WEPWL+o3GeoWwOoAw=\n"
)


def _peter_key() -> Ed25519PrivateKey:
    material = base64.b64decode(PETER_SKEY.split("+", 4)[4])
    assert material[0] == 0x01  # Ed25519, then the 32-byte seed
    return Ed25519PrivateKey.from_private_bytes(material[1:])


def _key(label: str) -> Ed25519PrivateKey:
    """A fixed key derived from a label, so goldens are reproducible."""
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(label.encode()).digest())


LOG = "studbook.example/log"
LOG_KEY = _key("studbook test log key")
# MTH of the 8-leaf RFC 6962 vector set (see test_merkle.py), so the golden ties both together.
ROOT_8 = bytes.fromhex("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")


# --- Format ------------------------------------------------------------------------------------


def test_body_is_the_c2sp_layout() -> None:
    cp = Checkpoint(LOG, 8, ROOT_8)
    assert cp.body() == (b"studbook.example/log\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n")
    with_ext = Checkpoint(LOG, 0, bytes(32), ("ext one", "ext two"))
    assert with_ext.body().endswith(
        b"\n0\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\next one\next two\n"
    )
    assert Checkpoint.from_body(with_ext.body()) == with_ext


def test_golden_signed_checkpoint(update_goldens: bool) -> None:
    leaves = [
        *("", "00", "10", "2021", "3031", "40414243", "5051525354555657"),
        "606162636465666768696a6b6c6d6e6f",
    ]
    tree = MemoryTree.from_entries(bytes.fromhex(h) for h in leaves)
    assert tree.root() == ROOT_8
    note = sign_checkpoint(Checkpoint(LOG, tree.size, tree.root()), LOG, LOG_KEY)
    golden = VECTORS / "checkpoint.golden.note"
    if update_goldens:
        golden.write_text(note, encoding="utf-8")
    assert note == golden.read_text(encoding="utf-8")
    public = LOG_KEY.public_key()
    assert vkey(LOG, public) == (VECTORS / "checkpoint.golden.vkey").read_text().strip()
    assert verify_checkpoint(note, vkey(LOG, public)) == Checkpoint(LOG, 8, ROOT_8)


_line = st.text(
    st.characters(blacklist_categories=("Cc", "Cs")),  # no control characters, no surrogates
    min_size=1,
    max_size=40,
)


@settings(max_examples=50, deadline=None)
@given(
    origin=_line,
    size=st.integers(0, 2**64 - 1),
    root=st.binary(min_size=32, max_size=32),
    extensions=st.lists(_line, max_size=3).map(tuple),
)
def test_round_trip(origin: str, size: int, root: bytes, extensions: tuple[str, ...]) -> None:
    cp = Checkpoint(origin, size, root, extensions)
    assert Checkpoint.from_body(cp.body()) == cp
    note = sign_checkpoint(cp, LOG, LOG_KEY)
    assert verify_checkpoint(note, vkey(LOG, LOG_KEY.public_key())) == cp
    assert verify_checkpoint(note.encode(), LOG, LOG_KEY.public_key(), origin=origin) == cp


# --- Interoperability with golang.org/x/mod/sumdb/note ----------------------------------------


def test_sumdb_note_sign_vector() -> None:
    key = _peter_key()
    assert vkey("PeterNeumann", key.public_key()) == PETER_VKEY
    assert key_id("PeterNeumann", key.public_key()) == 0xC74F20A3
    assert sign_note(NOTE_TEXT, "PeterNeumann", key) == NOTE_TEXT + "\n" + PETER_SIG


def test_sumdb_note_open_vectors() -> None:
    note = NOTE_TEXT + "\n" + PETER_SIG + ENOCH_SIG
    # One known key among two signatures: the other is ignored.
    assert verify_note(note, PETER_VKEY) == NOTE_TEXT
    assert verify_note(note, ENOCH_VKEY) == NOTE_TEXT
    text, sigs = parse_signed_note(note)
    assert text == NOTE_TEXT
    assert [(s.name, s.key_id) for s in sigs] == [
        ("PeterNeumann", 0xC74F20A3),
        ("EnochRoot", 0xAF0CFE78),
    ]
    assert "".join(s.line() for s in sigs) == PETER_SIG + ENOCH_SIG
    # No known key signed.
    other = vkey("PeterNeumann", _key("impostor").public_key())
    with pytest.raises(UnverifiedSignatureError, match="not signed by"):
        verify_note(note, other)
    # The known key's signature is corrupt: the whole note is rejected.
    with pytest.raises(UnverifiedSignatureError, match="does not verify"):
        verify_note(NOTE_TEXT + "\n" + PETER_SIG[:60] + "ABCD" + PETER_SIG[60:], PETER_VKEY)


def test_note_text_may_hold_blank_lines() -> None:
    # The signatures start after the *last* blank line (the signed-note spec's own example).
    text = (
        "Ognuno sta solo sul cuor della terra\n"
        "trafitto da un raggio di sole:\n"
        "\n"
        "ed è subito sera.\n"
    )
    note = sign_note(text, LOG, LOG_KEY)
    assert verify_note(note, LOG, LOG_KEY.public_key()) == text
    assert parse_signed_note(note)[0] == text


def test_a_signature_counts_only_under_its_name_and_key_id(signed: str) -> None:
    # The log's own signature bytes relabelled with another name: the key id matches but the name
    # does not, so it is an unknown key's signature and proves nothing (note_test.go misnamedSig).
    relabelled = signed.replace(f"\u2014 {LOG} ", "\u2014 mirror.example/log ")
    assert relabelled != signed
    with pytest.raises(UnverifiedSignatureError, match="not signed by"):
        verify_checkpoint(relabelled, LOG, LOG_KEY.public_key())
    verify_checkpoint(relabelled.replace("mirror.example/log", LOG), LOG, LOG_KEY.public_key())


@pytest.mark.parametrize(
    "note",
    [
        NOTE_TEXT,
        NOTE_TEXT + "\n",
        NOTE_TEXT + "\n" + PETER_SIG[:-1],
        "\x01" + NOTE_TEXT + "\n" + PETER_SIG,
        b"\xff" + (NOTE_TEXT + "\n" + PETER_SIG).encode(),
        NOTE_TEXT + "\n" + "— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZ"
        "Sb6KE6RyyBwJnAM=",
        NOTE_TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
        NOTE_TEXT + "\n" + PETER_SIG * (MAX_SIGNATURES + 1),
        NOTE_TEXT
        + "\n"
        + "- PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1F\n",
        NOTE_TEXT + "\n" + "— PeterNeumann AAAA\n",  # key id without a signature
        NOTE_TEXT + "\n" + "— Peter+Neumann x08go/ZJkuBS9UG/SffcvIAQxVBt\n",
    ],
)
def test_malformed_notes_are_refused(note: str | bytes) -> None:
    # The malformed messages of note_test.go TestOpen, and a few more.
    with pytest.raises(CheckpointError):
        verify_note(note, PETER_VKEY)


def test_real_sumdb_checkpoint() -> None:
    cp = verify_checkpoint(SUMDB_NOTE, SUMDB_VKEY, origin="go.sum database tree")
    assert cp.origin == "go.sum database tree"
    assert cp.size == 6476701
    assert base64.b64encode(cp.root_hash).decode() == "mb8QLQIs0Z0yP5Cstq6guj87oXWeC9gEM8oVikmm9Wk="
    with pytest.raises(UnverifiedSignatureError):
        verify_checkpoint(SUMDB_NOTE.replace("6476701", "6476702"), SUMDB_VKEY)
    with pytest.raises(UnverifiedSignatureError):
        verify_checkpoint(SUMDB_NOTE.replace("mb8Q", "mb8R"), SUMDB_VKEY)
    with pytest.raises(CheckpointError, match="expected"):
        verify_checkpoint(SUMDB_NOTE, SUMDB_VKEY, origin=LOG)


@pytest.mark.parametrize("good", [PETER_VKEY, ENOCH_VKEY, SUMDB_VKEY])
def test_mangled_vkeys_are_refused(good: str) -> None:
    # As note_test.go TestNewVerifier: every proper substring and every one-byte change fails.
    name, public = parse_vkey(good)
    assert vkey(name, public) == good
    for i in range(len(good)):
        for j in range(i + 1, len(good) + 1):
            if (i, j) != (0, len(good)):
                with pytest.raises(CheckpointError):
                    parse_vkey(good[i:j])
        changed = good[:i] + chr(ord(good[i]) + 1) + good[i + 1 :]
        with pytest.raises(CheckpointError):
            parse_vkey(changed)
    # From note_test.go: a wrong-length key and an unknown algorithm, each with a matching key id.
    for bad in [
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ]:
        with pytest.raises(CheckpointError):
            parse_vkey(bad)


# --- Verification rules ------------------------------------------------------------------------


@pytest.fixture
def signed() -> str:
    return sign_checkpoint(Checkpoint(LOG, 8, ROOT_8), LOG, LOG_KEY)


def test_wrong_key_is_refused(signed: str) -> None:
    impostor = _key("impostor").public_key()
    with pytest.raises(UnverifiedSignatureError, match="not signed by") as exc:
        verify_checkpoint(signed, LOG, impostor)
    assert exc.value.keyid == f"{LOG}+{key_id(LOG, impostor):08x}"
    assert isinstance(exc.value, LineageError)
    # The right key under another name is another key.
    with pytest.raises(UnverifiedSignatureError):
        verify_checkpoint(signed, "other.example/log", LOG_KEY.public_key())


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("\n8\n", "\n9\n"),
        (LOG, "studbook.example/lot"),
        ("Xcna", "Ycna"),
        ("=\n\n", "=\nextension\n\n"),
    ],
)
def test_altered_body_is_refused(signed: str, old: str, new: str) -> None:
    assert old in signed
    with pytest.raises(UnverifiedSignatureError, match="does not verify"):
        verify_checkpoint(signed.replace(old, new, 1), LOG, LOG_KEY.public_key())


def test_unknown_signatures_are_ignored(signed: str) -> None:
    body = Checkpoint(LOG, 8, ROOT_8).body().decode()
    witness = sign_note(body, "witness.example", _key("witness"))
    witness_line = witness.split("\n\n")[1]
    # Same name, another key id: an unknown key (e.g. the log's next key), ignored.
    rotated = sign_note(body, LOG, _key("next log key")).split("\n\n")[1]
    garbage = NoteSignature("stranger.example", 0x01020304, b"not a signature").line()
    for note in [
        signed + witness_line,
        body + "\n" + witness_line + signed.split("\n\n")[1],
        signed + rotated + garbage,
    ]:
        assert verify_checkpoint(note, LOG, LOG_KEY.public_key()) == Checkpoint(LOG, 8, ROOT_8)
    # But a witness-only note is not signed by the log.
    with pytest.raises(UnverifiedSignatureError, match="not signed by"):
        verify_checkpoint(witness, LOG, LOG_KEY.public_key())
    # And a second, corrupt signature under the log's own key id rejects the note.
    forged = NoteSignature(LOG, key_id(LOG, LOG_KEY.public_key()), bytes(64)).line()
    with pytest.raises(UnverifiedSignatureError, match="does not verify"):
        verify_checkpoint(signed + forged, LOG, LOG_KEY.public_key())


@pytest.mark.parametrize(
    "body",
    [
        "log\n8\n",  # two lines
        "log\n08\n" + "A" * 43 + "=\n",  # leading zero
        "log\n+8\n" + "A" * 43 + "=\n",
        "log\n 8\n" + "A" * 43 + "=\n",
        "log\n\u0668\n" + "A" * 43 + "=\n",  # ARABIC-INDIC DIGIT EIGHT: int() would take it
        "log\n18446744073709551616\n" + "A" * 43 + "=\n",  # 2**64
        "log\n8\n" + "A" * 42 + "==\n",  # 31 bytes
        "log\n8\n" + "A" * 43 + "\n",  # unpadded
        "log\n8\n" + "A" * 43 + "=\n\n",  # empty extension line
        "\n8\n" + "A" * 43 + "=\n",  # empty origin
        "log\n8\n" + "A" * 43 + "=",  # no final newline
    ],
)
def test_malformed_bodies_are_refused(body: str) -> None:
    with pytest.raises(CheckpointError):
        Checkpoint.from_body(body)
    if body.endswith("\n") and "\n\n" not in body:
        # Properly signed, still refused: a signature does not make a body well formed.
        with pytest.raises(CheckpointError):
            verify_checkpoint(sign_note(body, LOG, LOG_KEY), LOG, LOG_KEY.public_key())


def test_checkpoint_fields_are_validated() -> None:
    for args, field in [
        (("", 1, ROOT_8), "origin"),
        (("a\nb", 1, ROOT_8), "origin"),
        ((LOG, -1, ROOT_8), "size"),
        ((LOG, 2**64, ROOT_8), "size"),
        ((LOG, 1, ROOT_8[:31]), "root_hash"),
        ((LOG, 1, ROOT_8, ("",)), "extensions"),
        ((LOG, 1, ROOT_8, ("a\nb",)), "extensions"),
    ]:
        with pytest.raises(CheckpointError) as exc:
            Checkpoint(*args)  # type: ignore[arg-type]  # argument tuples of mixed shapes
        assert exc.value.field == field
    for name in ["", "a b", "a+b", "a\u00a0b"]:
        with pytest.raises(CheckpointError):
            vkey(name, LOG_KEY.public_key())
        with pytest.raises(CheckpointError):
            sign_note("text\n", name, LOG_KEY)
    with pytest.raises(CheckpointError):
        sign_note("no final newline", LOG, LOG_KEY)
