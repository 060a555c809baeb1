"""District assignment where it is cheapest: in PostGIS when the store has it, else here.

Both paths apply the rule of :mod:`geo.districts` to the city pack's layer; the tests
hold them to the same answers.
"""

from __future__ import annotations

import hashlib
import weakref

import numpy as np
import numpy.typing as npt
import shapely

from dispatch.citypack import CityPack
from dispatch.store import UnitOfWork
from dispatch.store.spatial import ShapeLayer
from geo.districts import DistrictIndex

_layers: weakref.WeakKeyDictionary[DistrictIndex, ShapeLayer] = weakref.WeakKeyDictionary()


def shape_layer(pack: CityPack) -> ShapeLayer | None:
    """Return the pack's districts and limit as the store keeps them (``None``: none)."""
    index = pack.district_index
    if index is None or index.utm_epsg is None:
        return None
    layer = _layers.get(index)
    if layer is None:
        shapes = index.shapes()
        boundary = bytes(shapely.to_wkb(pack.boundary)) if pack.boundary is not None else None
        digest = hashlib.sha256()
        digest.update(str(index.utm_epsg).encode())
        for district, rank, wkb in shapes:
            digest.update(f"{district}\0{rank}\0".encode())
            digest.update(wkb)
        digest.update(boundary or b"")
        layer = ShapeLayer(digest.hexdigest(), index.utm_epsg, shapes, boundary)
        _layers[index] = layer
    return layer


def assign_districts(uow: UnitOfWork, pack: CityPack, lon: npt.ArrayLike,
                     lat: npt.ArrayLike) -> npt.NDArray[np.object_]:
    """Return the district id (or ``None``) of each point: PostGIS when available.

    Runs inside the caller's write transaction (the first call of a process may load the
    pack's shapes into the store).
    """
    layer = shape_layer(pack) if uow.spatial.available else None
    if layer is None:
        return pack.assign_districts(lon, lat)
    uow.spatial.ensure(pack.name, layer)
    return uow.spatial.assign(pack.name, lon, lat, pack.snap_m)


def prepare_shapes(uow: UnitOfWork, pack: CityPack) -> bool:
    """Load the pack's shapes into a PostGIS store now, and commit; return whether loaded.

    Imports and ``dispatch init`` call it first, so that their read phases (rolled back
    before each write) find the shapes in place. A store without PostGIS: no-op.
    """
    layer = shape_layer(pack) if uow.spatial.available else None
    if layer is None:
        return False
    uow.begin_write()
    uow.spatial.ensure(pack.name, layer)
    uow.commit()
    return True
