"""one trustworthy state: source ownership, plans as rows, assignment claims

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 20:30:00

* requests: what the source last said (``source_status``, ``source_closed_at``,
  ``source_lon``/``source_lat``), who owns the status (``status_owner``), which source
  fields a supervisor overrode (``overrides``) and an unresolved source/local
  disagreement (``source_conflict``, ``conflict_at``);
* plans become rows: routes carry the crew's settings and schedule, stops the planning
  inputs and their lock, a new ``unplanned`` table the typed reasons; the JSON payload
  keeps only the settings a plan was made with;
* ``assignments``: the claims of assigned plans on districts and crews per service day,
  whose primary key lets the database refuse two assigned plans for one district;
* ``settings`` (the demo clock) and ``login_failures`` (throttling per source, which
  replaces the account lockout columns).

Existing plans are converted from their payloads.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

from dispatch.store.types import UTCDateTime

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

LOCAL_SOURCES = ("intake", "sweep")


def _dt(value: Any) -> datetime | None:
    return None if value in (None, "") else datetime.fromisoformat(str(value))


def upgrade() -> None:
    with op.batch_alter_table('requests', schema=None) as b:
        b.add_column(sa.Column('source_status', sa.String(length=32), nullable=True))
        b.add_column(sa.Column('source_closed_at', sa.DateTime(timezone=True), nullable=True))
        b.add_column(sa.Column('source_lon', sa.Float(), nullable=True))
        b.add_column(sa.Column('source_lat', sa.Float(), nullable=True))
        b.add_column(sa.Column('status_owner', sa.String(length=16), nullable=False,
                               server_default='source'))
        b.add_column(sa.Column('overrides', sa.JSON(), nullable=False, server_default='[]'))
        b.add_column(sa.Column('source_conflict', sa.JSON(), nullable=True))
        b.add_column(sa.Column('conflict_at', sa.DateTime(timezone=True), nullable=True))
        b.create_index('ix_requests_conflict_at', ['conflict_at'], unique=False)

    with op.batch_alter_table('plans', schema=None) as b:
        b.add_column(sa.Column('tz', sa.String(length=64), nullable=False, server_default='UTC'))
        b.add_column(sa.Column('districts', sa.JSON(), nullable=False, server_default='[]'))
        b.add_column(sa.Column('assigned_at', sa.DateTime(timezone=True), nullable=True))
        b.add_column(sa.Column('assigned_by', sa.String(length=64), nullable=True))
        b.create_index('ix_plans_city_service_date', ['city', 'service_date'], unique=False)

    with op.batch_alter_table('routes', schema=None) as b:
        b.add_column(sa.Column('status', sa.String(length=16), nullable=False,
                               server_default='planned'))
        b.add_column(sa.Column('capacity', sa.Integer(), nullable=False, server_default='0'))
        for name in ('shift_start', 'shift_end', 'start_at', 'end_at', 'break_start',
                     'break_end'):
            b.add_column(sa.Column(name, sa.DateTime(timezone=True), nullable=True))
        b.add_column(sa.Column('break_after', sa.Integer(), nullable=True))
        b.add_column(sa.Column('crew_settings', sa.JSON(), nullable=False, server_default='{}'))
        b.add_column(sa.Column('carried_from_plan_id', sa.Integer(), nullable=True))

    with op.batch_alter_table('stops', schema=None) as b:
        b.add_column(sa.Column('plan_id', sa.Integer(), nullable=True))
        b.add_column(sa.Column('status_at', sa.DateTime(timezone=True), nullable=True))
        b.add_column(sa.Column('status_by', sa.String(length=64), nullable=True))
        b.add_column(sa.Column('lock_position', sa.Integer(), nullable=True))
        b.add_column(sa.Column('category', sa.String(length=64), nullable=False,
                               server_default=''))
        b.add_column(sa.Column('district', sa.String(length=32), nullable=True))
        b.add_column(sa.Column('lon', sa.Float(), nullable=True))
        b.add_column(sa.Column('lat', sa.Float(), nullable=True))
        b.add_column(sa.Column('service_s', sa.Integer(), nullable=False, server_default='0'))
        b.add_column(sa.Column('size', sa.Integer(), nullable=False, server_default='1'))
        b.add_column(sa.Column('urgency', sa.Float(), nullable=False, server_default='0'))
        b.add_column(sa.Column('tw_start', sa.DateTime(timezone=True), nullable=True))
        b.add_column(sa.Column('tw_end', sa.DateTime(timezone=True), nullable=True))

    op.create_table('unplanned',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('plan_id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('reason_kind', sa.String(length=32), nullable=False),
    sa.Column('reason_detail', sa.Text(), nullable=False),
    sa.Column('category', sa.String(length=64), nullable=False),
    sa.Column('district', sa.String(length=32), nullable=True),
    sa.Column('lon', sa.Float(), nullable=True),
    sa.Column('lat', sa.Float(), nullable=True),
    sa.Column('service_s', sa.Integer(), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('urgency', sa.Float(), nullable=False),
    sa.Column('tw_start', sa.DateTime(timezone=True), nullable=True),
    sa.Column('tw_end', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['plan_id'], ['plans.id'], name=op.f('fk_unplanned_plan_id_plans'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['request_id'], ['requests.id'], name=op.f('fk_unplanned_request_id_requests')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_unplanned')),
    sa.UniqueConstraint('plan_id', 'request_id', name='uq_unplanned_plan_id_request_id')
    )
    op.create_table('assignments',
    sa.Column('city', sa.String(length=64), nullable=False),
    sa.Column('service_date', sa.Date(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('plan_id', sa.Integer(), nullable=False),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('claimed_by', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['plan_id'], ['plans.id'], name=op.f('fk_assignments_plan_id_plans'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('city', 'service_date', 'kind', 'key', name=op.f('pk_assignments'))
    )
    op.create_table('settings',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('value', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_settings'))
    )
    op.create_table('login_failures',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_failures'))
    )
    with op.batch_alter_table('login_failures', schema=None) as b:
        b.create_index('ix_login_failures_source_at', ['source', 'at'], unique=False)
        b.create_index('ix_login_failures_username_at', ['username', 'at'], unique=False)

    _convert_existing()

    with op.batch_alter_table('stops', schema=None) as b:
        b.alter_column('plan_id', existing_type=sa.Integer(), nullable=False)
        b.create_foreign_key(op.f('fk_stops_plan_id_plans'), 'plans', ['plan_id'], ['id'],
                             ondelete='CASCADE')
        b.create_unique_constraint('uq_stops_plan_id_request_id', ['plan_id', 'request_id'])
        b.create_index('ix_stops_request_id', ['request_id'], unique=False)
    with op.batch_alter_table('routes', schema=None) as b:
        b.create_unique_constraint('uq_routes_plan_id_crew_name', ['plan_id', 'crew_name'])
    with op.batch_alter_table('users', schema=None) as b:
        b.drop_column('failed_attempts')
        b.drop_column('locked_until')


def _convert_existing() -> None:
    """Fill the new columns of stored requests and turn stored plan payloads into rows."""
    bind = op.get_bind()
    req = sa.table('requests', sa.column('id', sa.Integer), sa.column('source', sa.String),
                   sa.column('status', sa.String), sa.column('closed_at', UTCDateTime()),
                   sa.column('lon', sa.Float), sa.column('lat', sa.Float),
                   sa.column('geocode_precision', sa.String),
                   sa.column('external_id', sa.String),
                   sa.column('source_status', sa.String),
                   sa.column('source_closed_at', UTCDateTime()),
                   sa.column('source_lon', sa.Float), sa.column('source_lat', sa.Float),
                   sa.column('status_owner', sa.String), sa.column('overrides', sa.JSON))
    imported = req.c.source.not_in(LOCAL_SOURCES)
    bind.execute(req.update().where(imported).values(
        source_status=req.c.status, source_closed_at=req.c.closed_at))
    bind.execute(req.update().where(imported, req.c.geocode_precision == 'source').values(
        source_lon=req.c.lon, source_lat=req.c.lat))
    bind.execute(req.update().where(
        req.c.source.in_(LOCAL_SOURCES) | req.c.status.in_(('scheduled', 'in_progress')))
        .values(status_owner='workflow'))
    bind.execute(req.update().where(req.c.geocode_precision == 'manual')
                 .values(overrides=['location']))

    plans = sa.table('plans', sa.column('id', sa.Integer), sa.column('city', sa.String),
                     sa.column('service_date', sa.Date), sa.column('status', sa.String),
                     sa.column('payload', sa.JSON), sa.column('tz', sa.String),
                     sa.column('districts', sa.JSON), sa.column('created_at', UTCDateTime()),
                     sa.column('created_by', sa.String))
    routes = sa.table('routes', sa.column('id', sa.Integer), sa.column('plan_id', sa.Integer),
                      sa.column('crew_name', sa.String), sa.column('status', sa.String),
                      sa.column('capacity', sa.Integer),
                      *(sa.column(n, UTCDateTime()) for n in (
                          'shift_start', 'shift_end', 'start_at', 'end_at', 'break_start',
                          'break_end')),
                      sa.column('break_after', sa.Integer), sa.column('crew_settings', sa.JSON))
    stops = sa.table('stops', sa.column('id', sa.Integer), sa.column('route_id', sa.Integer),
                     sa.column('plan_id', sa.Integer), sa.column('request_id', sa.Integer),
                     sa.column('status', sa.String), sa.column('locked', sa.Boolean),
                     sa.column('lock_position', sa.Integer), sa.column('category', sa.String),
                     sa.column('district', sa.String), sa.column('lon', sa.Float),
                     sa.column('lat', sa.Float), sa.column('service_s', sa.Integer),
                     sa.column('size', sa.Integer), sa.column('urgency', sa.Float),
                     sa.column('tw_start', UTCDateTime()), sa.column('tw_end', UTCDateTime()))
    unplanned = sa.table('unplanned', *(sa.column(n) for n in (
        'plan_id', 'request_id', 'reason_kind', 'reason_detail', 'category', 'district', 'lon',
        'lat', 'service_s', 'size', 'urgency')), sa.column('tw_start', UTCDateTime()),
        sa.column('tw_end', UTCDateTime()))
    claims = sa.table('assignments', sa.column('city'), sa.column('service_date'),
                      sa.column('kind'), sa.column('key'), sa.column('plan_id'),
                      sa.column('claimed_at', UTCDateTime()), sa.column('claimed_by'))

    # stops get their plan
    for route_id, plan_id in bind.execute(sa.select(routes.c.id, routes.c.plan_id)).all():
        bind.execute(stops.update().where(stops.c.route_id == route_id)
                     .values(plan_id=plan_id))
    # a request twice in one plan (stops keyed by external id alone): keep the first
    seen: set[tuple[int, int]] = set()
    for sid, pid, rid in bind.execute(sa.select(stops.c.id, stops.c.plan_id,
                                                stops.c.request_id).order_by(stops.c.id)):
        if (pid, rid) in seen:
            bind.execute(stops.delete().where(stops.c.id == sid))
        seen.add((pid, rid))

    claimed: set[tuple[Any, ...]] = set()
    plan_rows = bind.execute(sa.select(plans).order_by(plans.c.id.desc())).mappings().all()
    for plan in plan_rows:
        payload = dict(plan['payload'] or {})
        pid = plan['id']
        route_ids = {name: rid for rid, name in bind.execute(
            sa.select(routes.c.id, routes.c.crew_name).where(routes.c.plan_id == pid))}
        stop_of = {(route, req): sid for sid, route, req in bind.execute(
            sa.select(stops.c.id, stops.c.route_id, stops.c.request_id)
            .where(stops.c.plan_id == pid))}
        wanted = {str(s['request_id']) for r in payload.get('routes', []) for s in r['stops']}
        wanted |= {str(u['request_id']) for u in payload.get('unplanned', [])}
        wanted |= {str(lk['request_id']) for lk in payload.get('locks', [])}
        pk_of: dict[str, int] = {}
        for ext, pk in bind.execute(sa.select(req.c.external_id, req.c.id)
                                    .where(req.c.external_id.in_(sorted(wanted)))
                                    .order_by(req.c.id)):
            pk_of.setdefault(ext, pk)
        locks = {str(lk['request_id']): lk.get('position') for lk in payload.get('locks', [])}
        districts: set[str] = set()
        crews_with_stops: list[str] = []
        for r in payload.get('routes', []):
            rid = route_ids.get(r['crew'])
            if rid is None:
                continue
            brk = r.get('break') or {}
            if r.get('districts'):
                districts.update(str(d) for d in r['districts'])
            bind.execute(routes.update().where(routes.c.id == rid).values(
                status='superseded' if plan['status'] == 'superseded' else 'planned',
                capacity=int(r.get('capacity', 0)),
                shift_start=_dt(r.get('shift_start')), shift_end=_dt(r.get('shift_end')),
                start_at=_dt(r.get('start')), end_at=_dt(r.get('end')),
                break_start=_dt(brk.get('start')), break_end=_dt(brk.get('end')),
                break_after=brk.get('after_stops'),
                crew_settings={
                    'skills': list(r.get('skills', [])),
                    'districts': [str(d) for d in r.get('districts', [])],
                    'crew_districts': [str(d) for d in r.get('crew_districts', [])],
                    'depot': dict(r.get('depot', {})),
                    'lunch_start': r.get('lunch_start', '11:30:00'),
                    'lunch_end': r.get('lunch_end', '13:30:00'),
                    'lunch_s': int(r.get('lunch_s', 1800)),
                    'max_duration_s': r.get('max_duration_s'),
                }))
            if r['stops']:
                crews_with_stops.append(r['crew'])
            for s in r['stops']:
                pk = pk_of.get(str(s['request_id']))
                sid = stop_of.get((rid, pk)) if pk is not None else None
                if sid is None:
                    continue
                position = locks.get(str(s['request_id']))
                bind.execute(stops.update().where(stops.c.id == sid).values(
                    category=s['category'],
                    district=None if s.get('district') is None else str(s['district']),
                    lon=s.get('lon'), lat=s.get('lat'), service_s=int(s.get('service_s', 0)),
                    size=int(s.get('size', 1)), urgency=float(s.get('urgency', 0.0)),
                    tw_start=_dt(s.get('tw_start')), tw_end=_dt(s.get('tw_end')),
                    lock_position=position if isinstance(position, int) else None))
        for u in payload.get('unplanned', []):
            pk = pk_of.get(str(u['request_id']))
            if pk is None:
                continue
            bind.execute(unplanned.insert().values(
                plan_id=pid, request_id=pk, reason_kind=u.get('reason_kind', 'other'),
                reason_detail=u.get('reason_detail', u.get('reason', '')),
                category=u.get('category', ''),
                district=None if u.get('district') is None else str(u['district']),
                lon=u.get('lon'), lat=u.get('lat'), service_s=int(u.get('service_s', 0)),
                size=int(u.get('size', 1)), urgency=float(u.get('urgency', 0.0)),
                tw_start=_dt(u.get('tw_start')), tw_end=_dt(u.get('tw_end'))))
        settings = {'settings': payload.get('settings', {}), 'seed': payload.get('seed')}
        bind.execute(plans.update().where(plans.c.id == pid).values(
            payload=settings, tz=payload.get('tz', 'UTC'), districts=sorted(districts)))
        if plan['status'] == 'assigned':
            keys = [('district', d) for d in sorted(districts) or ['*']]
            keys += [('crew', c) for c in crews_with_stops]
            day = (plan['city'], plan['service_date'])
            if any((*day, k, v) in claimed for k, v in keys):
                # two assigned plans for one day (the old bug): the newer one stands
                bind.execute(plans.update().where(plans.c.id == pid)
                             .values(status='superseded'))
                bind.execute(routes.update().where(routes.c.plan_id == pid)
                             .values(status='superseded'))
                continue
            for k, v in keys:
                claimed.add((*day, k, v))
                bind.execute(claims.insert().values(
                    city=plan['city'], service_date=plan['service_date'], kind=k, key=v,
                    plan_id=pid, claimed_at=plan['created_at'],
                    claimed_by=plan['created_by']))


def downgrade() -> None:
    with op.batch_alter_table('users', schema=None) as b:
        b.add_column(sa.Column('failed_attempts', sa.Integer(), nullable=False,
                               server_default='0'))
        b.add_column(sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('routes', schema=None) as b:
        b.drop_constraint('uq_routes_plan_id_crew_name', type_='unique')
    with op.batch_alter_table('stops', schema=None) as b:
        b.drop_index('ix_stops_request_id')
        b.drop_constraint('uq_stops_plan_id_request_id', type_='unique')
        b.drop_constraint(op.f('fk_stops_plan_id_plans'), type_='foreignkey')
    op.drop_table('login_failures')
    op.drop_table('settings')
    op.drop_table('assignments')
    op.drop_table('unplanned')
    with op.batch_alter_table('stops', schema=None) as b:
        for name in ('tw_end', 'tw_start', 'urgency', 'size', 'service_s', 'lat', 'lon',
                     'district', 'category', 'lock_position', 'status_by', 'status_at',
                     'plan_id'):
            b.drop_column(name)
    with op.batch_alter_table('routes', schema=None) as b:
        for name in ('carried_from_plan_id', 'crew_settings', 'break_after', 'break_end',
                     'break_start', 'end_at', 'start_at', 'shift_end', 'shift_start',
                     'capacity', 'status'):
            b.drop_column(name)
    with op.batch_alter_table('plans', schema=None) as b:
        b.drop_index('ix_plans_city_service_date')
        for name in ('assigned_by', 'assigned_at', 'districts', 'tz'):
            b.drop_column(name)
    with op.batch_alter_table('requests', schema=None) as b:
        b.drop_index('ix_requests_conflict_at')
        for name in ('conflict_at', 'source_conflict', 'overrides', 'status_owner',
                     'source_lat', 'source_lon', 'source_closed_at', 'source_status'):
            b.drop_column(name)
