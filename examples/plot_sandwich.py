#!/usr/bin/env python3
"""Plot the CSV written by `sandwich --csv FILE`: one curve per scheme, averaged over seeds.

Usage: python3 examples/plot_sandwich.py sandwich.csv sandwich.png

Top panel: ||grad f(xbar_t)||^2 (mean over seeds, log scale). Bottom panel: the upward and
downward divergences D_up and D_down at xbar_t. Needs only Debian's python3-matplotlib.
"""

import sys

from plot_common import means_and_divergences, save

SCHEME_ORDER = ["local-sgd-I", "hsgd-random", "local-sgd-G", "hsgd-group-iid", "hsgd-group-noniid"]


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    figure, top = means_and_divergences(sys.argv[1], "grad_norm_sq", SCHEME_ORDER,
                                        ("hsgd-random", "hsgd-group-iid", "hsgd-group-noniid"), legend_columns=3)
    top.set_yscale("log")
    save(figure, top, sys.argv[2], "H-SGD sits between local SGD with period I and with period G",
         r"$\|\nabla f(\bar x_t)\|^2$ (mean over seeds)")


if __name__ == "__main__":
    main()
