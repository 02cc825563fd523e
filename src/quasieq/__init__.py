"""quasieq: rebuild a trained ReLU network wide-and-shallow or deep-and-narrow, with a certificate.

    import quasieq as qe
    net = qe.load("model.onnx")                 # or qe.from_torch(module)
    box = qe.Box.cube(net.in_dim, -1.0, 1.0)
    cx  = qe.regions(net, box)                  # exact linear regions on the box
"""

from quasieq.box import Box
from quasieq.errors import QuasieqError
from quasieq.io import from_torch, load, save, to_torch
from quasieq.net import Provenance, ReluNet
from quasieq.regions import Region, RegionComplex, regions

__version__ = "0.1.0"

__all__ = [
    "Box", "QuasieqError", "ReluNet", "Provenance", "Region", "RegionComplex", "regions",
    "load", "save", "from_torch", "to_torch", "__version__",
]
