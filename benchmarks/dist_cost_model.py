#!/usr/bin/env python3
"""Data-parallel scaling on paper: a ring all-reduce against the compute of a training step.

A ring all-reduce of S bytes over N ranks sends 2(N-1)/N * S bytes through each link and takes 2(N-1)
latency-bound hops; with the gradients in k buckets the hops are paid per bucket:

    t_comm = 2 (N-1)/N * S / B + 2 (N-1) * k * a        (B: link bandwidth, a: per-hop latency)

Each rank trains on its own batch (the global batch grows with N), so compute per step t_c stays; with
no overlap the efficiency is t_c / (t_c + t_comm). Overlapping the buckets with backward (about 2/3 of
a step) hides all but the last bucket's share: exposed = max(t_comm - t_backward, last bucket's time).
The bucket size that balances a bucket's latency against its bandwidth time is b* = N a B (per hop,
b/N bytes cross a link in (b/N)/B, against a); smaller buckets pay more latency, larger ones expose more.

    python3 benchmarks/dist_cost_model.py --step-ms lstm_a=55,lstm_c=650 [--measured-ratio 1.93]
Step times: one rank, one thread, from `kiln bench-dist` (benchmarks/dist_scaling.sh); bytes: float32
gradients of the layer.
"""
import argparse

LAYERS = {  # float32 gradient bytes: 4 gates x H x (I + H) weights + 8 H biases, 4 bytes each
    "lstm_a": 4 * (4 * 256 * (128 + 256) + 8 * 256),
    "lstm_c": 4 * (4 * 1024 * (512 + 1024) + 8 * 1024),
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
        size = LAYERS[layer]
        buckets = max(1, round(size / (args.bucket_mb * 1e6)))
        print(f"\n{layer}: {size / 1e6:.2f} MB of gradients per step in {buckets} bucket(s); one-rank step {t_c * 1000:.0f} ms")
        print(f"{'link':<11} {'N':>3} {'comm ms':>8} {'no overlap':>11} {'overlapped':>11} {'b* MB':>6}")
        for link, (bw, lat) in LINKS.items():
            for n in ranks:
                t = comm_s(n, size, bw, lat, buckets)
                plain = t_c / (t_c + t)
                last = comm_s(n, size / buckets, bw, lat, 1)
                exposed = max(t - 2 / 3 * t_c, last)
                overlapped = t_c / (t_c + exposed)
                best = n * lat * bw / 1e6
                print(f"{link:<11} {n:>3} {t * 1000:>8.2f} {plain:>10.1%} {overlapped:>10.1%} {best:>6.1f}")


if __name__ == "__main__":
    main()
