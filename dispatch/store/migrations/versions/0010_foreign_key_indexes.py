"""foreign-key indexes: a plan's stops by route, and every other child by its parent

Revision ID: 0010
Revises: 0009

Every foreign key now leads an index. The one that mattered: ``stops.route_id`` had
none, so reading a plan's stops (the assignment preview on every open of the plan
page, every edit, a crew's route) scanned the stops of every plan ever kept, once per
route; with a year of plans (some 500,000 stop rows) the preview took seconds. The
index is ``(route_id, sequence)``: a route's stops come back in order from it. The
others serve the same kind of read and the deletes that cascade to them.
"""

from alembic import op


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_stops_route_id_sequence', 'stops', ['route_id', 'sequence'],
                    unique=False)
    op.create_index('ix_assignments_plan_id', 'assignments', ['plan_id'], unique=False)
    op.create_index('ix_unplanned_request_id', 'unplanned', ['request_id'], unique=False)
    op.create_index('ix_requests_duplicate_of_id', 'requests', ['duplicate_of_id'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_requests_duplicate_of_id', table_name='requests')
    op.drop_index('ix_unplanned_request_id', table_name='unplanned')
    op.drop_index('ix_assignments_plan_id', table_name='assignments')
    op.drop_index('ix_stops_route_id_sequence', table_name='stops')
