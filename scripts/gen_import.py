#!/usr/bin/env python3
"""Writes an NDJSON file for `yiwang import` (README, "Import legacy history"): tickets
on the demo organisation, each from accepted to closed in seven lines, and every
tenth ticket a repeat complaint (`related_to`) of the ticket before it, so chains of
related tickets run through the file.

    python3 scripts/gen_import.py --lines 20000 > /tmp/legacy.ndjson
    yiwang import --jobs 8 /tmp/legacy.ndjson
"""

import argparse
import json
import random
from datetime import datetime, timedelta, timezone

HOT = {"user": "王话务", "role": "hotline_agent", "unit": "etdz"}
DISP = {"user": "李派单", "role": "dispatcher", "unit": "etdz"}
HAND = {"user": "钱承办", "role": "handler", "unit": "zhzf"}
GRIDS = ["hg-01-g01", "hg-01-g02", "hg-02-g01", "fl-01-g01", "xy-01-g01", "by-01-g01"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--prefix", default="LEG")
    ap.add_argument("--start", default="2025-01-06T01:00:00Z")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    start = datetime.fromisoformat(args.start.replace("Z", "+00:00"))
    out = []
    n = 0
    while len(out) < args.lines:
        n += 1
        ref = f"{args.prefix}-{n:06d}"
        t = start + timedelta(minutes=37 * n)
        body = {
            "source": "hotline",
            "category": "city.exposed_garbage",
            "urgency": "normal",
            "title": f"垃圾堆积 {n}",
            "description": "市民反映垃圾未清运",
            "location": {"address": "皇冠街道", "grid": rng.choice(GRIDS)},
            "reporter": {"name": "赵先生", "phone": f"138{rng.randrange(10**8):08d}"},
        }
        if n % 10 == 0:
            body["related_to"] = f"{args.prefix}-{n - 1:06d}"
        steps = [
            (HOT, "create", body),
            (DISP, "assign", {"unit": "zhzf"}),
            (HAND, "sign", {"handler": "钱工"}),
            (HAND, "handle", {"result": "已清运"}),
            (DISP, "verify", {"passed": True, "note": "现场核实"}),
            (HOT, "feedback", {"satisfaction": rng.choice(["satisfied", "basically_satisfied"])}),
            (DISP, "close", {"code": "resolved"}),
        ]
        for i, (actor, action, b) in enumerate(steps):
            at = (t + timedelta(hours=3 * i)).strftime("%Y-%m-%dT%H:%M:%SZ")
            out.append(
                json.dumps(
                    {"ticket": ref, "at": at, "actor": actor, "action": action, "body": b},
                    ensure_ascii=False,
                )
            )
    print("\n".join(out[: args.lines]))


if __name__ == "__main__":
    main()
