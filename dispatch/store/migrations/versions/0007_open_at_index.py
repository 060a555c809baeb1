"""open-at index: requests by (closed_at, requested_at)

Revision ID: 0007
Revises: 0006

"Open at an instant" (today's work, the planner's candidates, triage, the backlog) is
read as two index range scans: requests closed after the instant, and requests without
a close time, each reported by then. Both are served by one ``(closed_at,
requested_at)`` index, which also covers what ``ix_requests_closed_at`` served
(closed-in-a-window reads); that index goes.
"""

from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_requests_closed_at_requested_at', 'requests',
                    ['closed_at', 'requested_at'], unique=False)
    op.drop_index('ix_requests_closed_at', table_name='requests')


def downgrade() -> None:
    op.create_index('ix_requests_closed_at', 'requests', ['closed_at'], unique=False)
    op.drop_index('ix_requests_closed_at_requested_at', table_name='requests')
