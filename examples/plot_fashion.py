#!/usr/bin/env python3
"""Plot the CSV written by `fashion`: test accuracy against steps, one curve per scheme.

Usage: python3 examples/plot_fashion.py fashion.csv fashion.png

Top panel: test accuracy of the global average on the held-out images (mean over seeds).
Bottom panel: the upward and downward divergences D_up and D_down at the global average for the
two H-SGD schemes. Needs only Debian's python3-matplotlib.
"""

import sys

from plot_common import means_and_divergences, save

SCHEME_ORDER = ["local-sgd-I", "hsgd-random", "hsgd-group-noniid", "local-sgd-G"]


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    figure, top = means_and_divergences(sys.argv[1], "test_accuracy", SCHEME_ORDER, ("hsgd-random", "hsgd-group-noniid"),
                                        legend_columns=2)
    save(figure, top, sys.argv[2], "Fashion-MNIST, two-class label shards", "test accuracy of the global average",
         legend="lower right", grid="major")


if __name__ == "__main__":
    main()
