#!/usr/bin/env python3
"""Plot the CSV written by `sandwich --csv FILE`: one curve per scheme, averaged over seeds.

Usage: python3 examples/plot_sandwich.py sandwich.csv sandwich.png

Top panel: ||grad f(xbar_t)||^2 (mean over seeds, log scale). Bottom panel: the upward and
downward divergences D_up and D_down at xbar_t. Needs only Debian's python3-matplotlib.
"""

import csv
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")  # no display needed
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)

SCHEME_ORDER = ["local-sgd-I", "hsgd-random", "local-sgd-G", "hsgd-group-iid", "hsgd-group-noniid"]
STYLE = {
    "local-sgd-I": dict(color="tab:green", linestyle="--"),
    "hsgd-random": dict(color="tab:blue", linewidth=2.2),
    "local-sgd-G": dict(color="tab:red", linestyle="--"),
    "hsgd-group-iid": dict(color="tab:purple", linestyle=":"),
    "hsgd-group-noniid": dict(color="tab:orange", linestyle="-."),
}


def read(path):
    """{column: {scheme: {step: [values over seeds]}}} for the gradient-space columns."""
    series = {name: defaultdict(lambda: defaultdict(list)) for name in ("grad_norm_sq", "d_up", "d_down")}
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            if row["grad_norm_sq"] == "":
                continue  # a step where only the model space was measured
            for name, by_scheme in series.items():
                by_scheme[row["scheme"]][int(row["step"])].append(float(row[name]))
    return series


def mean_curve(by_step):
    steps = sorted(by_step)
    return steps, [sum(by_step[s]) / len(by_step[s]) for s in steps]


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    source, target = sys.argv[1], sys.argv[2]
    series = read(source)
    schemes = [s for s in SCHEME_ORDER if s in series["grad_norm_sq"]]
    schemes += sorted(set(series["grad_norm_sq"]) - set(schemes))

    figure, (top, bottom) = plt.subplots(2, 1, figsize=(8, 7.5), sharex=True, height_ratios=[3, 2])
    for scheme in schemes:
        steps, values = mean_curve(series["grad_norm_sq"][scheme])
        top.plot(steps, values, label=scheme, **STYLE.get(scheme, {}))
    top.set_yscale("log")
    top.set_ylabel(r"$\|\nabla f(\bar x_t)\|^2$ (mean over seeds)")
    top.set_title("H-SGD sits between local SGD with period I and with period G")
    top.legend()
    top.grid(True, which="both", alpha=0.3)

    for scheme in ("hsgd-random", "hsgd-group-iid", "hsgd-group-noniid"):
        if scheme not in series["d_up"]:
            continue
        style = STYLE.get(scheme, {})
        steps, up = mean_curve(series["d_up"][scheme])
        _, down = mean_curve(series["d_down"][scheme])
        bottom.plot(steps, up, color=style.get("color"), linestyle="-", label=f"{scheme}: D_up")
        bottom.plot(steps, down, color=style.get("color"), linestyle=":", label=f"{scheme}: D_down")
    bottom.set_yscale("log")
    bottom.set_xlabel("local step t")
    bottom.set_ylabel("divergence at $\\bar x_t$")
    bottom.legend(fontsize="small", ncol=3)
    bottom.grid(True, which="both", alpha=0.3)

    figure.tight_layout()
    figure.savefig(target, dpi=110)
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
