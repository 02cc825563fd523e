"""quasieq: rebuild a trained ReLU network wide-and-shallow or deep-and-narrow, with a certificate.

    import quasieq as qe
    net  = qe.load("model.onnx")                 # or qe.from_torch(module)
    box  = qe.Box.cube(net.in_dim, -1.0, 1.0)
    cx   = qe.regions(net, box)                  # exact linear regions on the box
    wide = qe.to_wide(net, box, delta=1e-3)      # two hidden layers
    deep = qe.to_deep(net, box, delta=1e-3)      # width 2D + 2K + 2
    rep  = qe.compare(net, wide, box)            # Monte-Carlo certificate of the disagreement measure
    flat = qe.slice(net, p0, [p1 - p0, p2 - p0]) # the net on the plane through three inputs

The IR, the file readers and the region engine load with the package; the constructions, the checker,
the torch frontend and ``quadratic`` (torch) are imported on first use.
"""

from quasieq.box import Box
from quasieq.errors import QuasieqError
from quasieq.io.files import load, save
from quasieq.lazy import lazy_attributes
from quasieq.net import Provenance, ReluNet

# eager: the subpackage's name is the function's
from quasieq.regions import Region, RegionComplex, load_regions, regions
from quasieq.slices import Slice
from quasieq.slices import slice_net as slice

__version__ = "0.1.0"

#: Public names imported on first use, and the module each comes from.
_LAZY = {
    "SimplexComplex": "quasieq.geometry.simplices",
    "triangulate": "quasieq.geometry.simplices",
    "to_wide": "quasieq.construct.transform",
    "to_deep": "quasieq.construct.transform",
    "compare": "quasieq.verify.compare",
    "EquivalenceReport": "quasieq.verify.compare",
    "from_torch": "quasieq.frontend.torch_source",
    "to_torch": "quasieq.io.torch_io",
    "quadratic": "quasieq.quadratic",
}

__all__ = ["Box", "QuasieqError", "ReluNet", "Provenance", "Region", "RegionComplex", "regions", "load_regions",
           "load", "save", "slice", "Slice", "__version__", *_LAZY]

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, __all__)
