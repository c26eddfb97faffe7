#!/usr/bin/env python3
"""Data-parallel scaling on paper: a ring all-reduce against the compute of a training step.

A ring all-reduce of S bytes over N ranks sends 2(N-1)/N * S bytes through each link and takes 2(N-1)
latency-bound hops; with the gradients in k buckets the hops are paid per bucket:

    t_comm = 2 (N-1)/N * S / B + 2 (N-1) * k * a        (B: link bandwidth, a: per-hop latency)

Each rank trains on its own batch (the global batch grows with N), so compute per step t_c stays; with
no overlap the efficiency is t_c / (t_c + t_comm). Kiln's DataParallel starts a bucket as soon as
backward has finished its parameters (Note [Gradient buckets]); a fused layer finishes all its
parameters at once, at the end of its backward, so what overlap can hide is the communication of every
layer but the last one backward reaches (the first layer), during the window in which backward still
runs after the first buckets are ready (measured by `kiln bench-dist`: none for one layer, 20% of a step
for LSTM (d)'s two bidirectional layers):
    exposed = max(t_comm - window, t_comm of the first layer's gradients)
The bucket size that balances a bucket's latency against its bandwidth time is b* = N a B (per hop,
b/N bytes cross a link in (b/N)/B, against a); smaller buckets pay more latency, larger ones expose more.

    python3 benchmarks/dist_cost_model.py --step-ms lstm_a=55,lstm_c=650,lstm_d=190
Step times: one rank, one thread, from `kiln bench-dist` (benchmarks/dist_scaling.sh); bytes: float32
gradients of the layer.
"""
import argparse

def lstm_bytes(i, h, dirs=1):  # float32 gradient bytes: 4 gates x H x (I + H) weights + 8 H biases, per direction
    return 4 * dirs * (4 * h * (i + h) + 8 * h)


# layer: (gradient bytes, bytes of the first layer (finished last), overlap window as a share of a step)
LAYERS = {
    "lstm_a": (lstm_bytes(128, 256), lstm_bytes(128, 256), 0.0),
    "lstm_c": (lstm_bytes(512, 1024), lstm_bytes(512, 1024), 0.0),
    "lstm_d": (lstm_bytes(128, 256, 2) + lstm_bytes(512, 256, 2), lstm_bytes(128, 256, 2), 0.20),
}
LINKS = {"10 Gbit/s": (10e9 / 8, 50e-6), "100 Gbit/s": (100e9 / 8, 5e-6)}  # bytes/s, per-hop latency


def comm_s(n, size, bw, lat, buckets):
    return 2 * (n - 1) / n * size / bw + 2 * (n - 1) * buckets * lat


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--step-ms", default="lstm_a=55,lstm_c=650", help="one-rank step times, ms: layer=ms,...")
    p.add_argument("--bucket-mb", type=float, default=4.0, help="gradient bucket size, MB")
    args = p.parse_args()
    steps = {k: float(v) / 1000 for k, v in (kv.split("=") for kv in args.step_ms.split(","))}
    ranks = [2, 4, 8, 16, 32, 64]
    for layer, t_c in steps.items():
        size, first_layer, window = LAYERS[layer]
        buckets = max(1, round(size / (args.bucket_mb * 1e6)))
        print(f"\n{layer}: {size / 1e6:.2f} MB of gradients per step in {buckets} bucket(s); one-rank step {t_c * 1000:.0f} ms")
        print(f"{'link':<11} {'N':>3} {'comm ms':>8} {'no overlap':>11} {'overlapped':>11} {'b* MB':>6}")
        for link, (bw, lat) in LINKS.items():
            for n in ranks:
                t = comm_s(n, size, bw, lat, buckets)
                plain = t_c / (t_c + t)
                last = comm_s(n, first_layer, bw, lat, max(1, round(buckets * first_layer / size)))
                exposed = max(t - window * t_c, last)
                overlapped = t_c / (t_c + exposed)
                best = n * lat * bw / 1e6
                print(f"{link:<11} {n:>3} {t * 1000:>8.2f} {plain:>10.1%} {overlapped:>10.1%} {best:>6.1f}")


if __name__ == "__main__":
    main()
