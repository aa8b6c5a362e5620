#!/usr/bin/env python3
"""Prints the median and median absolute deviation of every benchmark from
criterion's output in target/criterion, as the Markdown rows of BENCHMARKS.md."""
import glob
import json
import os

root = os.path.join(os.path.dirname(__file__), "..", "target", "criterion")
print("| benchmark | median | MAD | 95 % CI of the median |")
print("|---|---:|---:|---|")
for path in sorted(glob.glob(os.path.join(root, "*", "*", "new", "estimates.json"))):
    group, bench = path.split(os.sep)[-4:-2]
    e = json.load(open(path))
    med, mad = e["median"]["point_estimate"], e["median_abs_dev"]["point_estimate"]
    ci = e["median"]["confidence_interval"]
    fmt = lambda ns: f"{ns / 1000:.2f} µs" if ns >= 1000 else f"{ns:.1f} ns"
    print(f"| {group}/{bench} | {fmt(med)} | {fmt(mad)} | {fmt(ci['lower_bound'])} – {fmt(ci['upper_bound'])} |")
