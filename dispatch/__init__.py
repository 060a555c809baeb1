"""Curbside dispatch: domain model, importers, planning, services, CLI and the store."""
