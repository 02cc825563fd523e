"""Experiment 1 (paper_notes §4.1): eight De Morgan-equivalent ReLU networks on breast cancer.

Each network splits seven "rule" units between the complement form and the union form of the extended
De Morgan law (paper_notes §2.7):

    logits(x) = final_bias − Σ_{wide arms a} arm_a(x) + Σ_{deep chains c} chain_c(x)

* a wide arm is the block 5→2→2→2;
* a deep chain is In (5→3→3→3), then middle blocks (3→3→3→3), then Out (3→3→3→2);
* every dense layer, the last one of each block included, is followed by ReLU, so arms and chains are
  ≥ 0 and the logits are final_bias minus a non-negative "¬(∧¬A)" term plus a non-negative "∨" term;
* weights and biases ~ N(0, 0.8²), ``final_bias`` ~ N(3, 0.1²); softmax cross-entropy, Adam with
  learning rate 1e-4, full batch, 100 000 steps in the authors' scripts.

The authors' scripts (``NetworkEquivalence/NetworkEquivalency_{I..VIII}.py``) are reproduced with their
defects, which change what is trained:

* V has no ``final_bias`` (its logits are the chain output, ≥ 0); its middle block M2 is computed but
  unused (M3 reads M1's output), and block M5 uses M4's *biases*, so the chain is effectively
  In, M1, M3, M4, M5(weights of M5, biases of M4), Out: six blocks, 209 used parameters.
* VII's M2 is likewise computed but unused: In, M1, M3, M4, Out, five blocks.

**Batching.** All (network, seed) pairs train as one model, with no padding and no masks. Member
``b = net_index · seeds + seed``; every arm, chain and middle block of every member is one *row* of a
stacked parameter tensor, and activations are laid out (rows, width, samples):

* arms: ``arm_weight[l]`` (G_a, d_{l+1}, d_l), ``arm_bias[l]`` (G_a, d_{l+1}, 1), row r belongs to member
  ``arm_member[r]``; a layer is h ← relu(W h + b), one ``baddbmm`` for all rows;
* chains: ``in_*`` and ``out_*`` with ``chain_member``; chain rows are sorted by their number of middle
  blocks, longest first, so the chains that have a k-th middle block are a prefix of the rows;
* middle blocks: ``middle_weight[l]`` (G_m, 3, 3), grouped by depth k (the rows of depth k are
  contiguous and follow the chain order), ``middle_chain[m]`` is the chain row of middle row m and
  ``middle_bias_row[m]`` the row of ``middle_bias[l]`` it takes its biases from (its own row except for
  V's last block, which reads M4's);
* ``final_bias`` (B, 2), multiplied by ``final_mask`` (0 for V).

The arm and chain outputs are summed per member with ``index_add``. The total loss is the *sum* of the
members' mean cross-entropies, so each member's gradient is the gradient of its own loss, and since
Adam acts elementwise, training the batch is training every member on its own. Only V's
``final_bias`` is masked (gradient exactly 0, so Adam never moves it); every other entry is used.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from itertools import pairwise
from typing import Any

import numpy as np
import torch

from quasieq.errors import QuasieqError

#: Initialisation of all weights and biases but ``final_bias``: N(0, INIT_STD²) (``variance = 0.8``
#: in the scripts is passed as ``stddev``).
INIT_STD = 0.8
FINAL_BIAS_MEAN = 3.0
FINAL_BIAS_STD = 0.1
LEARNING_RATE = 1e-4
FAITHFUL_STEPS = 100_000
DEFAULT_SEEDS = 10
#: Test fraction of the held-out protocol (stratified split, seeded by the seed index).
HELD_OUT_FRACTION = 0.3
#: Breast cancer: the scripts use the first five features (mean radius, texture, perimeter, area,
#: smoothness).
N_FEATURES = 5
N_CLASSES = 2

ARM_WIDTHS = (N_FEATURES, 2, 2, 2)
IN_WIDTHS = (N_FEATURES, 3, 3, 3)
MIDDLE_WIDTHS = (3, 3, 3, 3)
OUT_WIDTHS = (3, 3, 3, N_CLASSES)

PROTOCOLS = ("all-data", "held-out")


@dataclass(frozen=True)
class NetSpec:
    """One of the eight networks as the authors' script builds it.

    ``chains[c][j]`` is the middle slot whose biases the j-th middle block of chain c uses; it is j
    for every block except V's last one (the bias-sharing bug).
    """

    name: str
    arms: int
    chains: tuple[tuple[int, ...], ...]
    final_bias: bool = True
    defect: str = ""


NETWORKS = (
    NetSpec("I", 3, ((0, 1),)),
    NetSpec("II", 2, ((0, 1, 2),)),
    NetSpec("III", 4, ((0,),)),
    NetSpec("IV", 2, ((), (0,))),
    NetSpec("V", 0, ((0, 1, 2, 2),), final_bias=False,
            defect="no final_bias; M2 computed but unused; M5 uses M4's biases: 6 effective blocks"),
    NetSpec("VI", 7, ()),
    NetSpec("VII", 1, ((0, 1, 2),), defect="M2 computed but unused: 5 effective blocks"),
    NetSpec("VIII", 3, ((), ())),
)


def _layer_shapes(widths: tuple[int, ...]) -> list[tuple[int, int]]:
    return list(pairwise(widths))


def used_parameter_count(spec: NetSpec) -> int:
    """Parameters the network's output depends on: Σ over used dense layers of (d_in·d_out + d_out).

    Middle blocks count their weights each and their biases once per distinct bias source.
    """
    def weights(widths):
        return sum(a * b for a, b in _layer_shapes(widths))

    def biases(widths):
        return sum(b for _, b in _layer_shapes(widths))

    count = spec.arms * (weights(ARM_WIDTHS) + biases(ARM_WIDTHS)) + (N_CLASSES if spec.final_bias else 0)
    for chain in spec.chains:
        count += weights(IN_WIDTHS) + biases(IN_WIDTHS) + weights(OUT_WIDTHS) + biases(OUT_WIDTHS)
        count += len(chain) * weights(MIDDLE_WIDTHS) + len(set(chain)) * biases(MIDDLE_WIDTHS)
    return count


def _relu_block(h: torch.Tensor, weights, biases) -> torch.Tensor:
    """relu(W h + b) layer after layer, for stacked rows: h (G, d, N), W (G, d', d), b (G, d', 1)."""
    for w, b in zip(weights, biases, strict=True):
        h = torch.relu(torch.baddbmm(b, w, h))
    return h


def _stacked(rows: int, widths: tuple[int, ...]) -> tuple[torch.nn.ParameterList, torch.nn.ParameterList]:
    shapes = _layer_shapes(widths)
    return (torch.nn.ParameterList(torch.nn.Parameter(torch.empty(rows, b, a, dtype=torch.float64)) for a, b in shapes),
            torch.nn.ParameterList(torch.nn.Parameter(torch.empty(rows, b, 1, dtype=torch.float64)) for _, b in shapes))


class DeMorganBatch(torch.nn.Module):
    """The eight networks × ``seeds`` seeds as one float64 module (layout in the module docstring)."""

    # index buffers (register_buffer in __init__), declared for readers and type checkers
    arm_member: torch.Tensor
    chain_member: torch.Tensor
    middle_chain: torch.Tensor
    middle_bias_row: torch.Tensor
    final_mask: torch.Tensor

    def __init__(self, seeds: int):
        super().__init__()
        if seeds < 1:
            raise QuasieqError(f"seeds {seeds}: need at least one seed")
        self.seeds = seeds
        members = len(NETWORKS) * seeds
        arm_member, chains = [], []  # chains: (member, bias sources of its middle blocks)
        for i, spec in enumerate(NETWORKS):
            for s in range(seeds):
                arm_member += [self.member(i, s)] * spec.arms
                chains += [(self.member(i, s), chain) for chain in spec.chains]
        chains.sort(key=lambda mc: -len(mc[1]))  # stable: longest chains first, then member order
        depth = max(len(chain) for _, chain in chains)
        #: Number of chain rows that have a k-th middle block (a prefix of the chain rows).
        self.level_sizes = [sum(len(chain) > k for _, chain in chains) for k in range(depth)]
        middle_chain: list[int] = []
        middle_bias_row: list[int] = []
        bias_rows: dict[tuple[int, int], int] = {}
        for k in range(depth):
            for c, (_, chain) in enumerate(chains[: self.level_sizes[k]]):
                middle_chain.append(c)
                middle_bias_row.append(bias_rows.setdefault((c, chain[k]), len(bias_rows)))
        self.register_buffer("arm_member", torch.tensor(arm_member, dtype=torch.long))
        self.register_buffer("chain_member", torch.tensor([m for m, _ in chains], dtype=torch.long))
        self.register_buffer("middle_chain", torch.tensor(middle_chain, dtype=torch.long))
        self.register_buffer("middle_bias_row", torch.tensor(middle_bias_row, dtype=torch.long))
        self.register_buffer("final_mask", torch.tensor([float(spec.final_bias) for spec in NETWORKS
                                                         for _ in range(seeds)], dtype=torch.float64))
        self.arm_weight, self.arm_bias = _stacked(len(arm_member), ARM_WIDTHS)
        self.in_weight, self.in_bias = _stacked(len(chains), IN_WIDTHS)
        self.out_weight, self.out_bias = _stacked(len(chains), OUT_WIDTHS)
        self.middle_weight, _ = _stacked(len(middle_chain), MIDDLE_WIDTHS)
        _, self.middle_bias = _stacked(len(bias_rows), MIDDLE_WIDTHS)
        self.final_bias = torch.nn.Parameter(torch.empty(members, N_CLASSES, dtype=torch.float64))
        self.reset_parameters()

    def member(self, net_index: int, seed: int) -> int:
        return net_index * self.seeds + seed

    def parameter_rows(self) -> dict[str, torch.Tensor]:
        """For each named parameter, the member that owns each of its rows."""
        owners = {"arm": self.arm_member, "in": self.chain_member, "out": self.chain_member,
                  "middle_weight": self.chain_member[self.middle_chain],
                  "final": torch.arange(self.final_bias.shape[0])}
        bias_owner = torch.empty(self.middle_bias[0].shape[0], dtype=torch.long)
        bias_owner[self.middle_bias_row] = owners["middle_weight"]
        owners["middle_bias"] = bias_owner
        rows = {}
        for name, _ in self.named_parameters():
            head = name.split(".")[0]
            rows[name] = owners[head] if head.startswith("middle") else owners[head.split("_")[0]]
        return rows

    def reset_parameters(self) -> None:
        """Member (net i, seed s) draws its parameters from its own generator, seeded s·8 + i, so a
        member's initialisation does not depend on how many seeds are trained beside it."""
        rows = self.parameter_rows()
        params = dict(self.named_parameters())
        with torch.no_grad():
            for i in range(len(NETWORKS)):
                for s in range(self.seeds):
                    b = self.member(i, s)
                    g = torch.Generator().manual_seed(s * len(NETWORKS) + i)
                    for name, p in params.items():
                        mine = rows[name] == b
                        mean, std = (FINAL_BIAS_MEAN, FINAL_BIAS_STD) if name == "final_bias" else (0.0, INIT_STD)
                        p[mine] = torch.empty_like(p[mine]).normal_(mean, std, generator=g)

    def used_parameter_counts(self) -> torch.Tensor:
        """(B,) number of parameter entries each member's output depends on (its rows, less V's
        masked ``final_bias``)."""
        counts = torch.zeros(self.final_bias.shape[0], dtype=torch.long)
        params = dict(self.named_parameters())
        for name, owner in self.parameter_rows().items():
            p = params[name]
            per_row = p[0].numel() if name != "final_bias" else N_CLASSES * self.final_mask.long()
            counts += torch.zeros_like(counts).index_add(0, owner, torch.ones_like(owner)) * per_row
        return counts

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, 2, N) of every member on its own inputs ``x`` (B, 5, N)."""
        arms = _relu_block(x[self.arm_member], self.arm_weight, self.arm_bias)  # (G_a, 2, N)
        h = _relu_block(x[self.chain_member], self.in_weight, self.in_bias)  # (G_c, 3, N)
        start = 0
        for size in self.level_sizes:
            rows = slice(start, start + size)
            biases = [b[self.middle_bias_row[rows]] for b in self.middle_bias]
            step = _relu_block(h[:size], [w[rows] for w in self.middle_weight], biases)
            h = torch.cat([step, h[size:]])
            start += size
        chains = _relu_block(h, self.out_weight, self.out_bias)  # (G_c, 2, N)
        total = (self.final_mask[:, None] * self.final_bias)[:, :, None].expand(-1, -1, x.shape[2])
        return total.index_add(0, self.arm_member, arms, alpha=-1.0).index_add(0, self.chain_member, chains)


def member_losses(model: DeMorganBatch, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(B,) mean softmax cross-entropy of each member on its own data (x (B, 5, N), y (B, N))."""
    return torch.nn.functional.cross_entropy(model(x), y, reduction="none").mean(1)


def member_accuracies(model: DeMorganBatch, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(B,) fraction of samples whose argmax logit is the label."""
    with torch.no_grad():
        return (model(x).argmax(1) == y).double().mean(1)


@dataclass(frozen=True)
class Split:
    """One seed's data: train and evaluation features (N, 5) and labels (N,)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def breast_cancer() -> tuple[np.ndarray, np.ndarray]:
    """The first five raw features (float64) and the class index.

    The scripts' one-hot labels are Y[:, 0] = 1 − target, Y[:, 1] = target, so the class index
    argmax Y is sklearn's target itself (0 = malignant).
    """
    from sklearn.datasets import load_breast_cancer  # heavy: loaded by the experiment that needs it

    data = load_breast_cancer()
    return np.asarray(data.data[:, :N_FEATURES], dtype=np.float64), np.asarray(data.target, dtype=np.int64)


def protocol_splits(protocol: str, seeds: int) -> list[Split]:
    """Per-seed data of a protocol.

    * ``all-data`` (the authors'): raw features; train and evaluate on all 569 samples.
    * ``held-out``: stratified split, test fraction :data:`HELD_OUT_FRACTION`, ``random_state`` = seed;
      features standardised with the training part's mean and standard deviation.
    """
    from sklearn.model_selection import train_test_split  # heavy: loaded by the experiment that needs it

    x, y = breast_cancer()
    if protocol == "all-data":
        return [Split(x, y, x, y)] * seeds
    if protocol != "held-out":
        raise QuasieqError(f"protocol {protocol!r}: choose one of {', '.join(PROTOCOLS)}")
    splits = []
    for s in range(seeds):
        x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=HELD_OUT_FRACTION, stratify=y, random_state=s)
        mean, std = x_tr.mean(0), x_tr.std(0)
        splits.append(Split((x_tr - mean) / std, y_tr, (x_te - mean) / std, y_te))
    return splits


def _member_tensors(splits: list[Split], part: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack the seeds' data in member order b = net_index · seeds + seed: x (B, 5, N), y (B, N)."""
    xs = np.stack([getattr(s, f"x_{part}").T for s in splits])
    ys = np.stack([getattr(s, f"y_{part}") for s in splits])
    reps = len(NETWORKS)
    return torch.from_numpy(np.tile(xs, (reps, 1, 1))), torch.from_numpy(np.tile(ys, (reps, 1)))


def train(model: DeMorganBatch, x: torch.Tensor, y: torch.Tensor, steps: int,
          progress: Callable[[int], None] | None = None) -> torch.Tensor:
    """Full-batch Adam (lr :data:`LEARNING_RATE`, TF's defaults β = (0.9, 0.999), ε = 1e-8) on the sum of
    the members' losses; returns the members' final losses (B,)."""
    optimiser = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE, betas=(0.9, 0.999), eps=1e-8)
    for step in range(steps):
        optimiser.zero_grad(set_to_none=False)
        member_losses(model, x, y).sum().backward()
        optimiser.step()
        if progress is not None:
            progress(step + 1)
    with torch.no_grad():
        return member_losses(model, x, y)


def _summary(values: list[float]) -> dict:
    arr = np.asarray(values, dtype=np.float64)
    return {"values": arr.tolist(), "mean": float(arr.mean()), "sd": float(arr.std(ddof=1)) if arr.size > 1 else 0.0}


def check_options(seeds: int, steps: int) -> None:
    """Raise :class:`QuasieqError` naming the first bad option."""
    if seeds < 1:
        raise QuasieqError(f"--seeds {seeds}: need at least one seed")
    if steps < 0:
        raise QuasieqError(f"--steps {steps}: must be ≥ 0")


def run_demorgan(seeds: int = DEFAULT_SEEDS, steps: int = FAITHFUL_STEPS, protocols: tuple[str, ...] = PROTOCOLS,
                 progress: Callable[[str, int], None] | None = None) -> dict:
    """Train the eight networks × ``seeds`` seeds for ``steps`` full-batch steps under each protocol.

    Returns the JSON document written by ``quasieq experiment demorgan``: per protocol and network the
    per-seed final training loss, training accuracy and evaluation accuracy with mean and sd (ddof 1).
    """
    check_options(seeds, steps)
    doc: dict[str, Any] = {
        "experiment": "demorgan", "seeds": seeds, "steps": steps, "learning_rate": LEARNING_RATE,
        "init_std": INIT_STD, "held_out_fraction": HELD_OUT_FRACTION,
        "networks": [{"name": s.name, "arms": s.arms, "chain_middle_blocks": [len(c) for c in s.chains],
                      "final_bias": s.final_bias, "used_parameters": used_parameter_count(s), "defect": s.defect}
                     for s in NETWORKS],
        "protocols": {},
    }
    for protocol in protocols:
        splits = protocol_splits(protocol, seeds)
        x_tr, y_tr = _member_tensors(splits, "train")
        x_te, y_te = _member_tensors(splits, "test")
        model = DeMorganBatch(seeds)
        start = time.perf_counter()
        losses = train(model, x_tr, y_tr, steps, None if progress is None else partial(progress, protocol))
        seconds = time.perf_counter() - start
        train_acc = member_accuracies(model, x_tr, y_tr)
        test_acc = member_accuracies(model, x_te, y_te)
        per_net = {}
        for i, spec in enumerate(NETWORKS):
            rows = slice(i * seeds, (i + 1) * seeds)
            per_net[spec.name] = {
                "final_loss": _summary(losses[rows].tolist()),
                "train_accuracy": _summary(train_acc[rows].tolist()),
                "test_accuracy": _summary(test_acc[rows].tolist()),
            }
        doc["protocols"][protocol] = {
            "train_size": int(y_tr.shape[1]), "test_size": int(y_te.shape[1]),
            "seconds": seconds, "networks": per_net,
        }
    return doc


def _pm(summary: dict, scale: float = 100.0) -> str:
    return f"{scale * summary['mean']:.1f} ± {scale * summary['sd']:.1f}"


def markdown_table(doc: dict) -> str:
    """The result table (accuracies in %, mean ± sd over seeds) as GitHub markdown."""
    protocols = list(doc["protocols"])
    head = ["net", "used params"]
    for p in protocols:
        head += [f"{p}: train acc", f"{p}: test acc"] if p != "all-data" else ["all-data: acc (train = eval)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for net in doc["networks"]:
        row = [net["name"], str(net["used_parameters"])]
        for p in protocols:
            r = doc["protocols"][p]["networks"][net["name"]]
            row.append(_pm(r["train_accuracy"]))
            if p != "all-data":
                row.append(_pm(r["test_accuracy"]))
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


__all__ = [
    "NETWORKS", "NetSpec", "DeMorganBatch", "used_parameter_count", "member_losses", "member_accuracies",
    "protocol_splits", "train", "run_demorgan", "markdown_table", "FAITHFUL_STEPS", "PROTOCOLS",
]
