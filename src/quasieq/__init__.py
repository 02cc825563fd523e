"""quasieq: rebuild a trained ReLU network wide-and-shallow or deep-and-narrow, with a certificate.

    import quasieq as qe
    net  = qe.load("model.onnx")                 # or qe.from_torch(module)
    box  = qe.Box.cube(net.in_dim, -1.0, 1.0)
    cx   = qe.regions(net, box)                  # exact linear regions on the box
    wide = qe.to_wide(net, box, delta=1e-3)      # two hidden layers
    deep = qe.to_deep(net, box, delta=1e-3)      # width 2D + 2K + 2
    rep  = qe.compare(net, wide, box)            # Monte-Carlo certificate of the disagreement measure
    flat = qe.slice(net, p0, [p1 - p0, p2 - p0]) # the net on the plane through three inputs
"""

from quasieq import quadratic
from quasieq.box import Box
from quasieq.construct import to_deep, to_wide
from quasieq.errors import QuasieqError
from quasieq.geometry import SimplexComplex, triangulate
from quasieq.io import from_torch, load, save, to_torch
from quasieq.net import Provenance, ReluNet
from quasieq.regions import Region, RegionComplex, regions
from quasieq.slices import Slice
from quasieq.slices import slice_net as slice
from quasieq.verify import EquivalenceReport, compare

__version__ = "0.1.0"

__all__ = [
    "Box", "QuasieqError", "ReluNet", "Provenance", "Region", "RegionComplex", "regions",
    "SimplexComplex", "triangulate", "to_wide", "to_deep", "compare", "EquivalenceReport",
    "load", "save", "from_torch", "to_torch", "slice", "Slice", "quadratic", "__version__",
]
