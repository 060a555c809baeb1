"""Services: the operations the CLI and the dashboard offer.

Each service takes a :class:`~dispatch.store.UnitOfWork`, does its work through the
repositories and owns the transaction (commits once, or rolls back on error).
"""
