"""A small convolutional classifier of your own, through quasieq (the guide's "Your own model" example).

    python examples/own_model.py [--out quasieq-own-model]

Trains a tiny CNN (Conv2d 1→4 3×3, BatchNorm2d, ReLU, MaxPool2d 2, Flatten, Linear 36→10) on the 8×8
digit images that ship with scikit-learn (nothing is downloaded; seeded, full-batch Adam, a few
seconds), exports it with ``torch.onnx.export`` to ``OUT/digits_cnn.onnx`` and writes
``OUT/plane.npy``, three test images (a 0, a 1 and a 7) of shape (3, 1, 8, 8) that span the plane
x = p0 + s(p1 − p0) + t(p2 − p0) for ``quasieq regions OUT/digits_cnn.onnx --plane OUT/plane.npy``.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

import quasieq as qe

SEED = 0
PLANE_DIGITS = (0, 1, 7)


def model() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(36, 10))


def train(X: np.ndarray, y: np.ndarray, steps: int = 300) -> nn.Sequential:
    torch.manual_seed(SEED)
    net = model()
    opt = torch.optim.Adam(net.parameters(), lr=0.02)
    Xt, yt = torch.tensor(X, dtype=torch.float32), torch.tensor(y)
    for _ in range(steps):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(net(Xt), yt)
        loss.backward()
        opt.step()
    return net.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("quasieq-own-model"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    digits = load_digits()
    X = (digits.images / 16.0).astype(np.float32)[:, None]  # (n, 1, 8, 8) in [0, 1]
    X_train, X_test, y_train, y_test = train_test_split(X, digits.target, test_size=0.3, random_state=SEED,
                                                        stratify=digits.target)
    net = train(X_train, y_train)
    with torch.no_grad():
        accuracy = float((net(torch.tensor(X_test)).argmax(1).numpy() == y_test).mean())
    path = args.out / "digits_cnn.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.zeros(1, 1, 8, 8),), str(path), dynamo=False, input_names=["image"],
                          output_names=["logits"], dynamic_axes={"image": {0: "N"}, "logits": {0: "N"}})
    points = np.stack([X_test[np.flatnonzero(y_test == d)[0]] for d in PLANE_DIGITS])
    np.save(args.out / "plane.npy", points)
    lowered = qe.io.load_lowered(path)
    print(f"held-out accuracy {accuracy:.3f} on {len(y_test)} images")
    print(f"{path}: lowered to {lowered.net!r}")
    print(f"{args.out / 'plane.npy'}: test images of the digits {PLANE_DIGITS}, shape {points.shape}")


if __name__ == "__main__":
    main()
