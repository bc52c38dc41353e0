"""The bytes of a log leaf: defined in `lineage.logleaf`, so the server, the audit and the
command-line verifier (which never imports the server) share one definition."""

from lineage.logleaf import b64, entry_bytes, envelope_digest

__all__ = ["b64", "entry_bytes", "envelope_digest"]
