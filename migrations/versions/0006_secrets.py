"""The log's private key leaves the database; `log_keys` keeps its origin and public key.

Why this shape. A migration runs against a database URL and knows nothing of the host's data
folder, and Alembic can be run by hand, so it must not decide where a secret goes. The server
does that before it migrates (`registry.startup.migrate`): it writes the newest private key found
in `log_keys` to the configured key file (0600 from creation; a file already there must hold the
same key) and passes the public keys it exported in `config.attributes["exported_log_keys"]`.
This revision then stores each row's public key and origin and drops the private column, and it
refuses to run when the active key was not exported, so no path (a plain `alembic upgrade`
included) can lose the only copy of the log's key. Older rows' private keys are dropped with the
column: they sign nothing any more, and their public halves stay to check old checkpoints.

An existing log keeps the origin its checkpoints were signed under (the configured
`log_origin`, passed as `config.attributes["log_origin"]`, else the old default
`studbook.local/log`): clients pinned that vkey, and a new origin would make it a different log.
New logs get an origin of their own at their first start (`registry.log.service`).

Downgrade puts the private key back only when it is handed in
(`config.attributes["log_key_pem"]`, by whoever holds the key file), and refuses otherwise.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 06:10:00
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LEGACY_ORIGIN = 'studbook.local/log'


def _public_b64(pem: str) -> str:
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        PublicFormat,
        load_pem_private_key,
    )

    key = load_pem_private_key(pem.encode('ascii'), password=None)
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode('ascii')


def upgrade() -> None:
    attributes = context.config.attributes
    exported = set(attributes.get('exported_log_keys') or ())
    origin = attributes.get('log_origin') or LEGACY_ORIGIN
    bind = op.get_bind()
    rows = bind.execute(sa.text('SELECT id, private_key FROM log_keys ORDER BY id')).all()
    publics = [(int(row[0]), _public_b64(str(row[1]))) for row in rows]
    if publics and publics[-1][1] not in exported:
        raise RuntimeError(
            "revision 0006 moves the log's private key out of the database, and it was not "
            "exported first: run `studbook migrate` (it writes the key to the data folder's "
            "log-key.pem, or STUDBOOK_LOG_KEY_FILE, mode 0600, before migrating)"
        )
    with op.batch_alter_table('log_keys') as batch:
        batch.add_column(sa.Column('origin', sa.Text(), nullable=True))
        batch.add_column(sa.Column('public_key', sa.Text(), nullable=True))
    for row_id, public in publics:
        bind.execute(
            sa.text('UPDATE log_keys SET origin = :origin, public_key = :public WHERE id = :id'),
            {'origin': origin, 'public': public, 'id': row_id},
        )
    with op.batch_alter_table('log_keys') as batch:
        batch.alter_column('origin', existing_type=sa.Text(), nullable=False)
        batch.alter_column('public_key', existing_type=sa.Text(), nullable=False)
        batch.drop_column('private_key')


def downgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.text('SELECT id, public_key FROM log_keys ORDER BY id')).all()
    pem = context.config.attributes.get('log_key_pem')
    if rows and (pem is None or _public_b64(pem) != str(rows[-1][1])):
        raise RuntimeError(
            "downgrading below 0006 puts the log's private key back into the database: pass "
            "the key file's PEM as config.attributes['log_key_pem']"
        )
    with op.batch_alter_table('log_keys') as batch:
        batch.add_column(sa.Column('private_key', sa.Text(), nullable=True))
    if rows:
        # Only the active key can be restored; older rows' private keys were dropped by upgrade.
        bind.execute(sa.text('DELETE FROM log_keys WHERE id <> :id'), {'id': int(rows[-1][0])})
        bind.execute(sa.text('UPDATE log_keys SET private_key = :pem'), {'pem': pem})
    with op.batch_alter_table('log_keys') as batch:
        batch.alter_column('private_key', existing_type=sa.Text(), nullable=False)
        batch.drop_column('public_key')
        batch.drop_column('origin')
