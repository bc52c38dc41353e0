"""Client-side log verification: defined in `lineage.offline`, so the command line checks the
log without importing the server. Re-exported here for server-side callers."""

from lineage.offline import (
    ConsistencyCheck,
    InclusionCheck,
    LogReader,
    check_consistency,
    check_inclusion,
    live_checkpoint,
    load_json,
    verify_signature,
)

__all__ = [
    "ConsistencyCheck",
    "InclusionCheck",
    "LogReader",
    "check_consistency",
    "check_inclusion",
    "live_checkpoint",
    "load_json",
    "verify_signature",
]
