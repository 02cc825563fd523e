"""Shared fixtures: a seeded generator, and random dense ReLU nets described by their layer shapes."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest

import quasieq as qe


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20240601)


def random_net(arch: tuple[int, ...], rng: np.random.Generator) -> qe.ReluNet:
    """A dense ReluNet of architecture ``(in, hidden..., out)`` with standard-normal weights / √fan-in."""
    weights = [rng.normal(size=(o, i)) / np.sqrt(i) for i, o in pairwise(arch)]
    biases = [rng.normal(size=o) * 0.1 for o in arch[1:]]
    return qe.ReluNet(weights, biases)
