#!/usr/bin/python3
"""Turn trade lines (protocol v1 NDJSON) into a COPY text-format TSV of polymarket_trades' columns
condition_id, trade_id, token_id, price, size, side, timestamp, raw_json, outcome, outcome_index,
with exactly the conversion ../shared/bench/asyncpg_anchor.py applies (timestamp in milliseconds,
side upper-cased, raw_json as given or the line itself), so psql \\copy writes the same rows.
usage: make_tsv.py IN.ndjson OUT.tsv"""
import json
import sys


def field(v):
    if v is None:
        return "\\N"
    s = str(v)
    return s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def main(src, dst):
    with open(src) as f, open(dst, "w") as out:
        for line in f:
            e = json.loads(line)
            ts = e["timestamp"] * 1000 if "timestamp" in e else e["timestamp_ms"]
            row = (e["condition_id"], e["trade_id"], e.get("token_id"), float(e["price"]), float(e["size"]),
                   e["side"].upper(), ts, e.get("raw_json", line.rstrip("\n")), e.get("outcome"), e.get("outcome_index"))
            out.write("\t".join(field(v) for v in row) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
