#!/usr/bin/env python3
"""Writes the CSV files the shipped CSV experiments train on (deterministic; checked in under data/).

data/waveforms.csv  csv_classification: a row per sequence, 'label' then up to 48 values; shorter
                    sequences end with empty fields. Four classes (sine, square, sawtooth, triangle)
                    with random period, phase, amplitude, offset and noise.
data/power.csv      csv_forecast: hourly rows of a synthetic city (time, temperature, load): a daily and
                    weekly load cycle, heating and cooling with temperature, and noise.
"""
import datetime
import math
import os
import random

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data")
os.makedirs(root, exist_ok=True)
rng = random.Random(20261206)

def wave(kind, phase):
    if kind == "sine":
        return math.sin(2 * math.pi * phase)
    if kind == "square":
        return 1.0 if (phase % 1.0) < 0.5 else -1.0
    if kind == "sawtooth":
        return 2.0 * (phase % 1.0) - 1.0
    p = phase % 1.0  # triangle
    return 4.0 * p - 1.0 if p < 0.5 else 3.0 - 4.0 * p

steps = 48
with open(os.path.join(root, "waveforms.csv"), "w") as f:
    f.write("label," + ",".join(f"t{t}" for t in range(steps)) + "\n")
    for _ in range(600):
        kind = rng.choice(["sine", "square", "sawtooth", "triangle"])
        n = rng.randint(24, steps)
        period, start = rng.uniform(8, 20), rng.random()
        amp, offset, noise = rng.uniform(0.5, 2.0), rng.uniform(-1, 1), rng.uniform(0.05, 0.3)
        values = [f"{offset + amp * wave(kind, start + t / period) + rng.gauss(0, noise):.3f}" for t in range(n)]
        f.write(kind + "," + ",".join(values + [""] * (steps - n)) + "\n")

with open(os.path.join(root, "power.csv"), "w") as f:
    f.write("time,temperature,load\n")
    weather = 0.0
    for h in range(24 * 120):
        day, hour = h // 24, h % 24
        weather = 0.95 * weather + rng.gauss(0, 0.6)
        temp = 12 + 8 * math.sin(2 * math.pi * (day - 30) / 365) + 5 * math.sin(2 * math.pi * (hour - 9) / 24) + weather
        weekday = day % 7 < 5
        load = (500 + (80 if weekday else 20) * math.exp(-((hour - 9) ** 2) / 8) + 120 * math.exp(-((hour - 19) ** 2) / 6)
                + 9 * max(0.0, 16 - temp) + 14 * max(0.0, temp - 22) - (0 if weekday else 40) + rng.gauss(0, 12))
        when = datetime.datetime(2026, 1, 1) + datetime.timedelta(hours=h)
        f.write(f"{when:%Y-%m-%dT%H:%M},{temp:.2f},{load:.1f}\n")
