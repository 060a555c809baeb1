"""Curbside geo: addresses, geocoding, boundaries, districts, travel times and maps."""
