#!/usr/bin/env python3
"""Attribute a `perf record -g` profile of the gateway or the bench floor to
pipeline stages, so the two can be compared per message.

usage: scripts/perf-categories.py PERF.DATA [PERF.DATA ...]

Each sample goes to the first category (in the order below) any frame of its
call stack matches; the rest is "other" (listed by leaf symbol). Record with
frame pointers, e.g. `perf record -g -p PID -o gw.data -- sleep 4` while a
bench run is in its measured window; divide a category's samples by the
messages handled in the window to compare floor and gateway per message.
"""
import collections
import subprocess
import sys

CATEGORIES = [
    ("stackgrow", ["runtime.morestack"]),
    ("gc-bg", ["runtime.gcBgMarkWorker"]),
    ("gc-assist", ["runtime.gcAssistAlloc"]),
    ("sysmon", ["runtime.sysmon"]),
    ("http", ["fasthttp.(*HostClient).Do", "fasthttp.(*Client).Do", "dispatch.(*hostPool).do"]),
    ("build", ["dispatch.build", "main.floorPost"]),
    ("read", ["streams.(*Group).Read", "main.floorRead", "XReadGroup"]),
    ("ack", ["AckMany", "main.floorAcker", "XAck"]),
    ("prepare", ["router.(*Router).prepare"]),
    ("settle", ["router.(*Router).settle"]),
    ("sched", ["runtime.schedule", "runtime.findRunnable", "runtime.park_m", "runtime.mcall"]),
    ("chan", ["runtime.chansend", "runtime.chanrecv", "runtime.selectgo"]),
]


def classify(stack):
    for name, keys in CATEGORIES:
        for frame in stack:
            if any(k in frame for k in keys):
                return name
    return "other:" + (stack[0] if stack else "?")


def main(paths):
    for path in paths:
        out = subprocess.run(["perf", "script", "-i", path, "-F", "ip,sym"],
                             capture_output=True, text=True, check=True).stdout
        counts, total, stack = collections.Counter(), 0, []
        for line in out.split("\n") + [""]:
            line = line.strip()
            if not line:
                if stack:
                    counts[classify(stack)] += 1
                    total += 1
                stack = []
                continue
            parts = line.split(None, 1)
            stack.append(parts[1] if len(parts) > 1 else parts[0])
        print(f"{path}: {total} samples")
        merged = collections.Counter()
        for k, v in counts.items():
            merged["other" if k.startswith("other:") else k] += v
        for k, v in merged.most_common():
            print(f"  {k:10s} {100 * v / max(total, 1):5.1f}%")
        others = sorted(((k[6:], v) for k, v in counts.items() if k.startswith("other:")), key=lambda x: -x[1])
        print("  top other:", ", ".join(f"{k}={100 * v / max(total, 1):.1f}%" for k, v in others[:10]))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
