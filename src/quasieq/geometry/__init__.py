"""Polytope geometry: simplicial decomposition of linear regions and per-simplex facts."""

from quasieq.geometry.simplices import SimplexComplex, triangulate, triangulate_polytope

__all__ = ["SimplexComplex", "triangulate", "triangulate_polytope"]
