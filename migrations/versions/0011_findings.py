"""Weights evidence: the fingerprint index and the findings the registry raises from it.

`model_fingerprints` indexes registered models by the fingerprint their registration signed
(`metadata.fingerprint`); models registered before this revision with such metadata are indexed
here. `findings` starts empty: no finding statement exists before this revision.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29 06:10:00
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_SCHEMES = (
    "studbook.dev/fingerprint/embedding-gram/v1",
    "studbook.dev/fingerprint/first-layer-gram/v1",
)
_WEIGHTS = (
    "fine_tuned_from",
    "adapter_of",
    "merged_from",
    "quantized_from",
    "prompted_from",
    "initialized_from",
)


def upgrade() -> None:
    op.create_table(
        "model_fingerprints",
        sa.Column("artifact_id", _ID, autoincrement=False, nullable=False),
        sa.Column("scheme", sa.String(length=100), nullable=False),
        sa.Column("domain", sa.BigInteger(), nullable=False),
        sa.Column("root", sa.Boolean(), nullable=False),
        sa.Column("content_sha256", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["artifact_id"], ["artifacts.id"]),
        sa.PrimaryKeyConstraint("artifact_id"),
    )
    with op.batch_alter_table("model_fingerprints", schema=None) as batch_op:
        batch_op.create_index(
            "ix_model_fingerprints_space", ["scheme", "domain", "root", "artifact_id"]
        )
    op.create_table(
        "findings",
        sa.Column("id", _ID, nullable=False),
        sa.Column("attestation_id", _ID, nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("model_id", _ID, nullable=False),
        sa.Column("other_id", _ID, nullable=False),
        sa.Column("relation", sa.String(length=20), nullable=True),
        sa.Column("statistic", sa.Float(), nullable=False),
        sa.Column("p_value", sa.Float(), nullable=False),
        sa.Column("permutations", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("decision_attestation_id", _ID, nullable=True),
        sa.Column("decision_reason", sa.String(length=4000), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["attestation_id"], ["attestations.id"]),
        sa.ForeignKeyConstraint(["model_id"], ["artifacts.id"]),
        sa.ForeignKeyConstraint(["other_id"], ["artifacts.id"]),
        sa.ForeignKeyConstraint(["decision_attestation_id"], ["attestations.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("attestation_id"),
        sa.UniqueConstraint("kind", "model_id", "other_id", name="uq_findings_kind_pair"),
    )
    with op.batch_alter_table("findings", schema=None) as batch_op:
        batch_op.create_index("ix_findings_status_id", ["status", "id"])
        batch_op.create_index(batch_op.f("ix_findings_model_id"), ["model_id"])
        batch_op.create_index(batch_op.f("ix_findings_other_id"), ["other_id"])
    _backfill()


def _backfill() -> None:
    """Index models registered with a fingerprint before this revision (none, usually)."""
    bind = op.get_bind()
    rows = bind.execute(
        sa.text("SELECT id, metadata, opaque FROM artifacts WHERE kind = 'model'")
    ).all()
    parented = {
        int(r[0])
        for r in bind.execute(
            sa.text("SELECT DISTINCT child_id FROM edges WHERE relation IN :rels").bindparams(
                sa.bindparam("rels", expanding=True)
            ),
            {"rels": list(_WEIGHTS)},
        )
    }
    out = []
    for artifact_id, metadata, opaque in rows:
        meta = json.loads(metadata) if isinstance(metadata, str) else metadata
        fp = meta.get("fingerprint") if isinstance(meta, dict) else None
        if opaque or not isinstance(fp, dict) or fp.get("scheme") not in _SCHEMES:
            continue
        domain, indices, gram = fp.get("domain"), fp.get("indices"), fp.get("gram_f16")
        if not isinstance(domain, int) or isinstance(domain, bool) or not 0 < domain < 2**31:
            continue
        if not isinstance(indices, list) or not isinstance(gram, str):
            continue
        try:
            raw = base64.b64decode(gram, validate=True)
        except ValueError:
            continue
        # `registry.weights.service.content_key`, without numpy: the bytes are the float16 Gram.
        head = repr((fp["scheme"], domain, indices)).encode()
        out.append(
            {
                "artifact_id": int(artifact_id),
                "scheme": fp["scheme"],
                "domain": domain,
                "root": int(artifact_id) not in parented,
                "content_sha256": hashlib.sha256(head + raw).hexdigest(),
            }
        )
    if out:
        table = sa.table(
            "model_fingerprints",
            sa.column("artifact_id"),
            sa.column("scheme"),
            sa.column("domain"),
            sa.column("root", sa.Boolean()),
            sa.column("content_sha256"),
        )
        op.bulk_insert(table, out)


def downgrade() -> None:
    with op.batch_alter_table("findings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_findings_other_id"))
        batch_op.drop_index(batch_op.f("ix_findings_model_id"))
        batch_op.drop_index("ix_findings_status_id")
    op.drop_table("findings")
    with op.batch_alter_table("model_fingerprints", schema=None) as batch_op:
        batch_op.drop_index("ix_model_fingerprints_space")
    op.drop_table("model_fingerprints")
