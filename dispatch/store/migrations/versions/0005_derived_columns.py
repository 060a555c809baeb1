"""derived columns for bounded reads: service day, H3 cell, first action; indexes

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 22:10:00

Pages group and filter in SQL on values computed once at write time: the local service
day of a request, its H3 cell (resolution 11, as an integer; coarser cells are parents
computed in SQL) and when somebody first acted on it. ``dispatch init`` fills them for
rows stored before this migration (it knows the city's time zone).
"""

from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

NOT_AN_ACTION = ("imported", "created", "updated_by_import", "source_conflict")


def upgrade() -> None:
    with op.batch_alter_table('requests', schema=None) as b:
        b.add_column(sa.Column('service_day', sa.Date(), nullable=True))
        b.add_column(sa.Column('h3_cell', sa.BigInteger(), nullable=True))
        b.add_column(sa.Column('first_action_at', sa.DateTime(timezone=True), nullable=True))
        b.create_index('ix_requests_closed_at', ['closed_at'], unique=False)
        b.create_index('ix_requests_service_day_category', ['service_day', 'category'],
                       unique=False)
        b.create_index('ix_requests_external_id', ['external_id'], unique=False)
    with op.batch_alter_table('events', schema=None) as b:
        b.create_index('ix_events_actor', ['actor'], unique=False)
        b.create_index('ix_events_at', ['at'], unique=False)
    # first actions of stored requests, from the event log (one statement)
    skip = ", ".join(f"'{a}'" for a in NOT_AN_ACTION)
    cast = "CAST(requests.id AS TEXT)" if op.get_bind().dialect.name == "sqlite" \
        else "CAST(requests.id AS VARCHAR)"
    op.execute(
        "UPDATE requests SET first_action_at = (SELECT MIN(events.at) FROM events "
        f"WHERE events.entity_type = 'request' AND events.entity_id = {cast} "
        f"AND events.action NOT IN ({skip}) AND events.at > requests.requested_at)")


def downgrade() -> None:
    with op.batch_alter_table('events', schema=None) as b:
        b.drop_index('ix_events_at')
        b.drop_index('ix_events_actor')
    with op.batch_alter_table('requests', schema=None) as b:
        b.drop_index('ix_requests_external_id')
        b.drop_index('ix_requests_service_day_category')
        b.drop_index('ix_requests_closed_at')
        b.drop_column('first_action_at')
        b.drop_column('h3_cell')
        b.drop_column('service_day')
