#!/usr/bin/env python3
"""Summarise `cargo bench -p xaynet-core --bench core` as the table in BENCHMARKS.md.

Reads criterion's medians from target/criterion (or $CARGO_TARGET_DIR/criterion) and prints
each figure with the ratio it is judged by. Exits non-zero if a goal of the core issue is
missed, so it can gate a release.
"""
import json
import os
import sys

target = os.environ.get("CARGO_TARGET_DIR", os.path.join(os.path.dirname(__file__), "..", "target"))
root = os.path.join(target, "criterion")


def median_ms(group, name):
    path = os.path.join(root, group, name, "new", "estimates.json")
    try:
        with open(path) as f:
            return json.load(f)["median"]["point_estimate"] / 1e6
    except FileNotFoundError:
        sys.exit(f"missing {path}: run `cargo bench -p xaynet-core --bench core` first")


m = {n: median_ms("core_1m", n) for n in
     ["keystream", "derive_mask", "mask", "aggregate_one", "unmask_to_f32",
      "parse_verify_update", "open_sealed_update"]}
r = {n: median_ms("reference_1m", n) for n in
     ["reference_mask", "reference_aggregate_one", "reference_unmask_to_f32"]}

rows = [
    ("key stream for one mask (yardstick a)", m["keystream"], "", None),
    ("derive a mask from a seed", m["derive_mask"], f"{m['derive_mask'] / m['keystream']:.2f}x (a)", m["derive_mask"] / m["keystream"] <= 1.3),
    ("mask (conversion + masking)", m["mask"], f"{m['mask'] / m['keystream']:.2f}x (a); {r['reference_mask'] / m['mask']:.0f}x faster than (b)",
     m["mask"] / m["keystream"] <= 1.5 and r["reference_mask"] / m["mask"] >= 25),
    ("add one masked object to the aggregate", m["aggregate_one"], f"{r['reference_aggregate_one'] / m['aggregate_one']:.0f}x faster than (b)",
     m["aggregate_one"] <= 2 and r["reference_aggregate_one"] / m["aggregate_one"] >= 25),
    ("unmask to an f32 model", m["unmask_to_f32"], f"{r['reference_unmask_to_f32'] / m['unmask_to_f32']:.0f}x faster than (b)",
     m["unmask_to_f32"] <= 10 and r["reference_unmask_to_f32"] / m["unmask_to_f32"] >= 25),
    ("parse + verify a 6 MB Update message", m["parse_verify_update"], "", None),
    ("open its sealed box", m["open_sealed_update"], "", None),
    ("(b) masking, one big integer per element", r["reference_mask"], "", None),
    ("(b) aggregation, one big integer per element", r["reference_aggregate_one"], "", None),
    ("(b) unmasking with rationals", r["reference_unmask_to_f32"], "", None),
]
print("| operation (1,000,000 f32 weights, Prime/F32/B0/M3, one core) | median | ratio | goal met |")
print("|---|---:|---|---|")
ok = True
for name, ms, ratio, good in rows:
    mark = "" if good is None else ("yes" if good else "**no**")
    ok &= good is not False
    print(f"| {name} | {ms:.2f} ms | {ratio} | {mark} |")
sys.exit(0 if ok else 1)
