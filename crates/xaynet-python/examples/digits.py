"""Federated training of a numpy softmax-regression digit classifier with Xaynet.

Ten participants, each holding a non-IID share of scikit-learn's bundled digits data (mostly
three digits each), train locally and submit their weights masked; the coordinator publishes
the sample-weighted average. Needs `pip install scikit-learn` and a coordinator for
650-weight models, e.g.:

    XAYNET__MODEL__LENGTH=650 XAYNET__PET__SUM__PROB=0.2 XAYNET__PET__UPDATE__PROB=1.0 \\
    XAYNET__PET__SUM__TIME__MIN=0.2 XAYNET__PET__UPDATE__TIME__MIN=1 XAYNET__PET__SUM2__TIME__MIN=0.1 \\
        xaynet serve
    python examples/digits.py http://127.0.0.1:8081 --rounds 10
"""

import argparse
import threading
import time

import numpy as np
from sklearn.datasets import load_digits

import xaynet

CLASSES, FEATURES = 10, 64
LEN = CLASSES * FEATURES + CLASSES


def softmax(w, x):
    W, b = w[: CLASSES * FEATURES].reshape(CLASSES, FEATURES), w[CLASSES * FEATURES:]
    z = x @ W.T + b
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=1, keepdims=True)


def train(w, x, y, steps=10, rate=1.0):
    """Full-batch gradient descent on the cross-entropy; weights kept in [-1, 1] (bound B0)."""
    w = w.astype(np.float64).copy()
    for _ in range(steps):
        p = softmax(w, x)
        p[np.arange(len(y)), y] -= 1.0
        gW = p.T @ x / len(y)
        gb = p.mean(axis=0)
        w -= rate * np.concatenate([gW.ravel(), gb])
        np.clip(w, -1.0, 1.0, out=w)
    return w.astype(np.float32)


def accuracy(w, x, y):
    return float((softmax(w, x).argmax(axis=1) == y).mean())


class DigitsParticipant(xaynet.ParticipantABC):
    def __init__(self, x, y, n_max):
        self.x, self.y, self.n_max = x, y, n_max

    def train_round(self, global_model):
        start = np.zeros(LEN, dtype=np.float32) if global_model is None else global_model
        # Scalar: the number of local samples over the largest share (FedAvg weights, <= 1).
        return train(start, self.x, self.y), len(self.y) / self.n_max


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="coordinator URL, e.g. http://127.0.0.1:8081")
    parser.add_argument("--participants", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()

    data = load_digits()
    x, y = data.data / 16.0, data.target
    order = np.random.default_rng(1).permutation(len(y))
    test, trainset = order[:360], order[360:]
    # Non-IID: sort the training data by digit, cut it into shards, deal 3 shards each.
    by_digit = trainset[np.argsort(y[trainset], kind="stable")]
    shards = np.array_split(by_digit, 3 * args.participants)
    deal = np.random.default_rng(2).permutation(len(shards))
    shares = [np.concatenate([shards[s] for s in deal[k::args.participants]])
              for k in range(args.participants)]
    n_max = max(len(s) for s in shares)

    threads = [xaynet.spawn_participant(args.url, DigitsParticipant,
                                        args=(x[s], y[s], n_max), poll_interval_ms=200)
               for s in shares]
    observer, new_model = xaynet.spawn_async_participant(args.url, poll_interval_ms=200)
    seen = 0
    try:
        while seen < args.rounds:
            if not new_model.wait(120):
                raise SystemExit("no new global model within 120 s")
            g = observer.get_global_model()
            seen += 1
            print(f"global model {seen}: test accuracy {accuracy(g, x[test], y[test]):.1%}")
    finally:
        for t in threads:
            t.stop()
        observer.stop()


if __name__ == "__main__":
    main()
