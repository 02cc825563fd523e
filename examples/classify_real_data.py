"""Wide and deep De Morgan forms of small ReLU classifiers trained on real data (seeded, offline).

    python examples/classify_real_data.py [--delta-fraction 1e-3] [--samples 20000] \
        [--plot docs/classification_moons.png]

Data sets ship with scikit-learn (nothing is downloaded): breast cancer (its first 5 features, as in
the paper's experiment, standardised; D = 5), iris (D = 4), make_moons (D = 2, noise 0.25). Each is
split 70/30 (stratified, seeded), standardised with the training statistics, and a small ReLU net is
trained (full-batch Adam, seeded). The box is the bounding box of the whole standardised data set, so
that every held-out point lies inside it (the constructions are arbitrary outside the box). For each
net the script builds the wide and the deep De Morgan forms with δ = delta_fraction · vol(box) and
prints held-out accuracy of the three nets, their sizes, the Monte-Carlo label-disagreement measure on
the box (95% Clopper–Pearson interval) and the analytic bound, as a Markdown table.
"""

from __future__ import annotations

import argparse
import time
from itertools import pairwise

import numpy as np
import torch
from sklearn.datasets import load_breast_cancer, load_iris, make_moons
from sklearn.model_selection import train_test_split

import quasieq as qe
from quasieq.construct.demorgan import as_scores, demorgan_deep, demorgan_wide, label_regions
from quasieq.net import class_labels
from quasieq.verify.compare import clopper_pearson
from quasieq.verify.data import data_agreement, data_box

SEED = 0


def datasets() -> dict[str, tuple[np.ndarray, np.ndarray, tuple[int, ...]]]:
    """name → (X, y, hidden widths)."""
    bc = load_breast_cancer()
    iris = load_iris()
    Xm, ym = make_moons(n_samples=600, noise=0.25, random_state=SEED)
    return {
        "breast cancer (5 features)": (bc.data[:, :5], bc.target, (3, 3)),
        "iris": (iris.data, iris.target, (5, 5)),
        "make_moons": (Xm, ym, (10, 10)),
    }


def train(X: np.ndarray, y: np.ndarray, hidden: tuple[int, ...], steps: int = 1500) -> qe.ReluNet:
    """A ReLU MLP D-hidden-K trained by full-batch Adam on cross-entropy, seeded."""
    torch.manual_seed(SEED)
    torch.set_num_threads(1)  # tiny nets: threads only add contention
    K = int(y.max()) + 1
    sizes = (X.shape[1], *hidden, K)
    layers: list[torch.nn.Module] = []
    for i, (a, b) in enumerate(pairwise(sizes)):
        layers.append(torch.nn.Linear(a, b, dtype=torch.float64))
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    Xt, yt = torch.tensor(X), torch.tensor(y)
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(Xt), yt)
        loss.backward()
        opt.step()
    return qe.from_torch(model.eval())


def chunked(net: qe.ReluNet, rows: int = 512):
    """``net.forward`` on blocks of ``rows`` points: the wide form's first layer has (D+1)n units, so a
    block of N points holds N·(D+1)n floats at once."""
    return lambda X: np.vstack([net(X[i : i + rows]) for i in range(0, len(X), rows)])


def label_measure(a: qe.ReluNet, b: qe.ReluNet, box: qe.Box, samples: int) -> tuple[float, float, float]:
    """Monte-Carlo label-disagreement measure with its 95% interval (absolute measure)."""
    rep = qe.compare(a, chunked(b), box, samples=samples, seed=SEED, task="classification")
    count = round(rep.label_disagreement_measure / box.volume * samples)
    lo, hi = clopper_pearson(count, samples)
    return rep.label_disagreement_measure, lo * box.volume, hi * box.volume


def run(name: str, X: np.ndarray, y: np.ndarray, hidden: tuple[int, ...], delta_fraction: float, samples: int) -> dict:
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, stratify=y, random_state=SEED)
    mean, std = Xtr.mean(axis=0), Xtr.std(axis=0)
    Xtr, Xte = (Xtr - mean) / std, (Xte - mean) / std
    net = train(Xtr, ytr, hidden)
    box = data_box(np.vstack([Xtr, Xte]))
    delta = delta_fraction * box.volume
    t0 = time.perf_counter()
    rules = label_regions(net, box)
    wide, deep = demorgan_wide(rules, delta), demorgan_deep(rules, delta)
    seconds = time.perf_counter() - t0
    row = {
        "name": name, "D": X.shape[1], "K": rules.classes,
        "arch": "-".join(map(str, (X.shape[1], *hidden, rules.classes))),
        "train": len(Xtr), "test": len(Xte), "label_regions": int(rules.label_regions.sum()),
        "rules": rules.rules_per_class.tolist(), "n": rules.n, "seconds": seconds,
        "box_volume": box.volume, "delta": delta, "bound": wide.provenance.error_bound, "net": net, "wide": wide,
        "deep": deep, "box": box, "Xte": Xte, "yte": yte,
    }
    for form_name, form in (("wide", wide), ("deep", deep)):
        agree = data_agreement(net, chunked(form), Xte, yte, box=box)
        row["acc"] = agree.accuracy_a
        row[f"acc_{form_name}"] = agree.accuracy_b
        row[f"agree_{form_name}"] = agree.agreement
        row[f"size_{form_name}"] = (
            form.width, form.hidden_layers, form.neurons, form.parameters, form.max_abs_weight()
        )
        row[f"measure_{form_name}"] = label_measure(as_scores(net), form, box, samples)
    return row


def table(rows: list[dict], samples: int) -> str:
    lines = [
        "| data set | net | label regions | rules n (per class) | held-out acc. original / wide / deep "
        "| wide: width × hidden layers, neurons, params | deep: width × hidden layers, neurons, params "
        "| label-disagreement measure wide [95% CI] | deep [95% CI] | δ | analytic bound |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        w, d = r["size_wide"], r["size_deep"]
        mw, md = r["measure_wide"], r["measure_deep"]
        lines.append(
            f"| {r['name']} (D={r['D']}, K={r['K']}, {r['train']}/{r['test']}) | {r['arch']} | {r['label_regions']} | "
            f"{r['n']} ({', '.join(map(str, r['rules']))}) | "
            f"{r['acc']:.3f} / {r['acc_wide']:.3f} / {r['acc_deep']:.3f} | "
            f"{w[0]} × {w[1]}, {w[2]}, {w[3]} | {d[0]} × {d[1]}, {d[2]}, {d[3]} | "
            f"{mw[0]:.2e} [{mw[1]:.1e}, {mw[2]:.1e}] | {md[0]:.2e} [{md[1]:.1e}, {md[2]:.1e}] | "
            f"{r['delta']:.2e} | {r['bound']:.2e} |"
        )
    volumes = ", ".join(f"{r['box_volume']:.3g}" for r in rows)
    lines.append("")
    lines.append(
        f"Measures are absolute (box volumes: {volumes}); Monte Carlo with "
        f"{samples} uniform samples on the data's bounding box; held-out agreement with the original: "
        + "; ".join(f"{r['name']}: wide {r['agree_wide']:.3f}, deep {r['agree_deep']:.3f}" for r in rows) + "."
    )
    return "\n".join(lines)


def plot_moons(row: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    box = row["box"]
    gx, gy = np.meshgrid(np.linspace(box.lo[0], box.hi[0], 500), np.linspace(box.lo[1], box.hi[1], 500))
    G = np.column_stack([gx.ravel(), gy.ravel()])
    lab = {k: class_labels(chunked(row[k])(G)).reshape(gx.shape) for k in ("net", "wide", "deep")}
    differ = (lab["wide"] != lab["net"]).astype(int) + 2 * (lab["deep"] != lab["net"])
    fig, axes = plt.subplots(1, 4, figsize=(16, 4.2), constrained_layout=True)
    extent = (box.lo[0], box.hi[0], box.lo[1], box.hi[1])
    titles = (
        "original",
        f"wide De Morgan ({row['size_wide'][0]} × 2)",
        f"deep De Morgan ({row['size_deep'][0]} × {row['size_deep'][1]})",
    )
    for ax, key, title in zip(axes[:3], ("net", "wide", "deep"), titles, strict=True):
        ax.imshow(lab[key], origin="lower", extent=extent, cmap="coolwarm", alpha=0.6, aspect="auto")
        ax.scatter(
            row["Xte"][:, 0], row["Xte"][:, 1], c=row["yte"], cmap="coolwarm", s=8, edgecolors="k", linewidths=0.3
        )
        ax.set_title(title)
    axes[3].imshow(differ, origin="lower", extent=extent, cmap="Greys", vmin=0, vmax=3, aspect="auto")
    axes[3].set_title(f"label disagreement on a 500² grid: {int((differ > 0).sum())} pixels")
    fig.suptitle(f"make_moons: {row['n']} rules, δ = {row['delta']:.1e} (bound {row['bound']:.1e})")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delta-fraction", type=float, default=1e-3, help="δ / vol(box)")
    parser.add_argument("--samples", type=int, default=20_000, help="Monte-Carlo samples per comparison")
    parser.add_argument("--plot", default="docs/classification_moons.png", help="figure for make_moons ('' for none)")
    args = parser.parse_args()
    rows = []
    for name, (X, y, hidden) in datasets().items():
        rows.append(run(name, X, y, hidden, args.delta_fraction, args.samples))
        print(f"{name}: {rows[-1]['n']} rules in {rows[-1]['seconds']:.1f} s", flush=True)
    print(table(rows, args.samples))
    if args.plot:
        plot_moons(rows[-1], args.plot)
        print(f"figure: {args.plot}")


if __name__ == "__main__":
    main()
