"""The Open311 GeoReport v2 server and client of Curbside."""
