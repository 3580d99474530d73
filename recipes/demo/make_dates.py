"""Generate the date-normalisation task: dates written many ways -> ISO 8601.

    python recipes/demo/make_dates.py OUT_DIR [--train 20000] [--valid 500] [--test 500] [--seed 1]

Writes OUT_DIR/{train,valid,test}.{src,tgt}, one example per line, e.g.
    "tuesday, march 3, 2015"  ->  "2015-03-03"
    "3/3/15"                  ->  "2015-03-03"
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
from pathlib import Path

MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august", "september",
          "october", "november", "december"]
DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


def ordinal(n: int) -> str:
    suffix = "th" if 11 <= n % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def render(d: dt.date, rng: random.Random) -> str:
    month, mon, day = MONTHS[d.month - 1], MONTHS[d.month - 1][:3], DAYS[d.weekday()]
    forms = [
        f"{month} {d.day}, {d.year}", f"{d.day} {month} {d.year}", f"{mon} {d.day} {d.year}",
        f"{day}, {month} {d.day}, {d.year}", f"{day} {d.day} {mon} {d.year}",
        f"{d.month}/{d.day}/{d.year}", f"{d.month}/{d.day}/{d.year % 100:02d}",
        f"{d.day:02d}.{d.month:02d}.{d.year}", f"{d.year}/{d.month:02d}/{d.day:02d}",
        f"the {ordinal(d.day)} of {month} {d.year}", f"{month} {ordinal(d.day)}, {d.year}",
        f"{d.day}-{mon}-{d.year}", f"{mon.upper()} {d.day:02d} {d.year}",
    ]
    text = rng.choice(forms)
    return text.title() if rng.random() < 0.3 else text


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out_dir")
    p.add_argument("--train", type=int, default=10000)
    p.add_argument("--valid", type=int, default=500)
    p.add_argument("--test", type=int, default=500)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    rng = random.Random(args.seed)
    start, span = dt.date(1950, 1, 1), (dt.date(2049, 12, 31) - dt.date(1950, 1, 1)).days
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", args.train), ("valid", args.valid), ("test", args.test)):
        dates = [start + dt.timedelta(days=rng.randrange(span + 1)) for _ in range(n)]
        (out / f"{split}.src").write_text("".join(render(d, rng) + "\n" for d in dates), encoding="utf-8")
        (out / f"{split}.tgt").write_text("".join(d.isoformat() + "\n" for d in dates), encoding="utf-8")
    print(f"wrote {args.train}/{args.valid}/{args.test} examples to {out}")


if __name__ == "__main__":
    main()
