#!/usr/bin/python3
"""Turn bench/run.sh's results (one JSON object per line) into bench/results.md,
bench/results.png and bench/results-freshness.png, and print the Markdown to stdout. Sections
whose runs are missing (PM_BENCH_ONLY=freshness) are left out, and so is results.png then.
Only the generated part of results.md is replaced: what follows the KEEP_BELOW line (the
hand-written analyses) stays as it is; an existing results.md without that line is kept whole
below it, so no run loses what a person wrote.
usage: report.py RESULTS.jsonl OUT_DIR [--context TEXT]"""
import argparse
import json
import os
import statistics

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("results")
ap.add_argument("out_dir")
ap.add_argument("--context", default="")
a = ap.parse_args()
res = [json.loads(line) for line in open(a.results)]


def rate(r):
    """rows/s of one writer run: the anchors' own figure, or pm-ingestd end to end."""
    if "loadgen" in r:
        return r["loadgen"]["end_to_end"]["rows_per_s"]
    return r["rows"] / r["seconds"]


writers = {}
for r in res:
    if r["section"] == "writers" and "duplicates" not in r["writer"]:
        writers.setdefault(r["writer"], []).append(r)
full = all(w in writers for w in ("asyncpg copy", "asyncpg executemany", "psql copy (text)"))
order = ["psql copy (text)", "asyncpg copy", "asyncpg executemany", "pm-ingestd"]
order += [w for w in writers if w not in order]
md = []


def throughput_section():
    """The writers' table and the pm-ingestd runs in detail."""
    anchor_copy = statistics.median(rate(r) for r in writers["asyncpg copy"])
    anchor_many = statistics.median(rate(r) for r in writers["asyncpg executemany"])
    n_rows = writers["psql copy (text)"][0]["rows"]
    out = [f"### Throughput: {n_rows:,} trades into a fresh `polymarket_trades`", ""]
    if a.context:
        out += [f"Machine and settings: {a.context}.", ""]
    out += ["| writer | what is timed | rows/s (each run) | median | vs asyncpg binary COPY | vs asyncpg executemany |",
            "|---|---|---|---|---|---|"]
    what = {
        "psql copy (text)": "`psql \\copy` of a prepared TSV, whole command; no dedup",
        "asyncpg copy": "`copy_records_to_table` (binary), the write alone; no dedup",
        "asyncpg executemany": "INSERT .. ON CONFLICT DO NOTHING in one transaction, the write alone",
    }
    for w in order:
        runs = writers[w]
        rates = [rate(r) for r in runs]
        med = statistics.median(rates)
        desc = what.get(w, "end to end: first line sent to last row visible; every line fsynced and acked")
        out.append(f"| {w} | {desc} | {', '.join(f'{x:,.0f}' for x in rates)} | **{med:,.0f}** | "
                   f"{med / anchor_copy:.2f}x | {med / anchor_many:.2f}x |")

    ing = writers["pm-ingestd"]
    out += ["", "pm-ingestd runs in detail (pm-loadgen `--input`, unlimited rate): acks alone reach "
            + ", ".join(f"{r['loadgen']['throughput_eps']:,.0f}" for r in ing)
            + " events/s (ack p50 " + ", ".join(f"{r['loadgen']['ack_latency_ms']['p50']:.1f}" for r in ing)
            + " ms, p99 " + ", ".join(f"{r['loadgen']['ack_latency_ms']['p99']:.1f}" for r in ing)
            + " ms at that saturating load); the daemon's peak RSS was "
            + ", ".join(f"{r['rss_kib'] / 1024:.0f}" for r in ing) + " MiB.", ""]
    return out


if full:
    md += throughput_section()
elif a.context:
    md += [f"Machine and settings: {a.context}.", ""]

lat = sorted((r for r in res if r["section"] == "latency"), key=lambda r: r["percent"])


def from_due(figures, key):
    """A figure timed from the due time, or '-' for a run recorded before pm-loadgen had it."""
    return f"{figures[key]:.2f}" if figures else "-"
if lat:
    md += ["### Ack latency against load", "",
           f"Maximum sustained rate = the median end-to-end rate of pm-ingestd above ({lat[-1]['rate']:,} events/s at 100 %); "
           "pm-loadgen replays the same trades paced (open loop) on 4 connections; latency = line written to the ack that covers it. "
           "The last two columns time the same acks from each line's due time in the schedule (coordinated omission: a line "
           "sent late, its window full or its sender starved, counts there; so does the pacer's grain, up to 1 ms).",
           "", "| load | offered events/s | achieved acks/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | behind schedule max ms | "
           "from due p99 ms | from due max ms |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in lat:
        l = r["loadgen"]
        q = l["ack_latency_ms"]
        md.append(f"| {r['percent']} % | {r['rate']:,} | {l['throughput_eps']:,.0f} | {q['p50']:.2f} | {q['p90']:.2f} | "
                  f"{q['p99']:.2f} | {q['p999']:.2f} | {q['max']:.2f} | {l['behind_schedule_max_ms']:.2f} | "
                  f"{from_due(l.get('ack_from_due_ms'), 'p99')} | {from_due(l.get('ack_from_due_ms'), 'max')} |")
    md.append("")

fresh = sorted((r for r in res if r["section"] == "freshness" and "loadgen_sched" not in r), key=lambda r: r["rate"])
# The 50 % load again with pm-loadgen at SCHED_BATCH: a table row of its own, not in the figure.
fresh_yielding = [r for r in res if r["section"] == "freshness" and r.get("loadgen_sched") == "batch"]


def freshness_target(r):
    """Issue 15's target for this load, and whether the run met it (none for the SCHED_BATCH row)."""
    v = r["loadgen"]["visible_ms"]
    if "loadgen_sched" in r:
        return "", None
    if r["rate"] <= 1000:
        return "p50 <= 3, p99 <= 10", v["p50"] <= 3 and v["p99"] <= 10
    if r["label"].startswith("50 %"):
        return "p99 <= 50", v["p99"] <= 50
    return "", None


def writer_share(r):
    """From the daemon's metrics around the run: the writer connections' busy share over the sending
    time, the mean events per batch, and the share of the daemon's arrival-to-visible time spent
    before a batch began. Blank for runs recorded before these were (no writer_before)."""
    b, a = r.get("writer_before"), r.get("writer_after")
    if not b or not a or a.get("batches", 0) <= b.get("batches", 0):
        return "", "", ""
    d = {k: a.get(k, 0) - b.get(k, 0) for k in a}
    busy = d["batch_seconds"] / (a["connections"] * r["loadgen"]["seconds"])
    waiting = d["waiting_seconds"] / d["visible_seconds"] if d.get("visible_seconds") else 0
    return f"{busy:.2f}", f"{d['events'] / d['batches']:,.0f}", f"{waiting:.0%}"


def freshness_section():
    """The table of visible latency per load."""
    out = ["### Freshness: arrival to visible in another session", "",
           "Paced (open-loop) load of the same trades, the daemon with its defaults (adaptive batching). Part of each "
           "rate is pm-loadgen's visibility probes (`--visibility-probes`): trades on a connection of their own, timed from "
           "the line written into the socket to the start of the first poll, by a separate PostgreSQL session, that "
           "returned the row (a primary-key range scan; between two polls 0.2 ms or 3 % of the oldest unseen probe's "
           "wait so far, whichever is more, plus the round trip: the poll period below is their mean, so a probe that "
           "waited 100 ms is placed within ~3 ms). 'from due' times the same probes from their due time in the "
           "schedule, which also counts a probe sent late because its sender was starved of CPU (and the pacer's grain, "
           "up to 1 ms). Ack latency is the load's own (line written to the ack that covers it). One load connection up to "
           "1,000 events/s, 4 above. The last row is the 50 % load again with pm-loadgen at SCHED_BATCH "
           "(`chrt --batch 0`): same schedule and CPU share, but its wake-ups no longer preempt the daemon or "
           "PostgreSQL on the two cores they share; its pacer may wake later, which only the 'from due' column "
           "counts. The last three columns are "
           "the daemon's own metrics over the run: the writer connections' busy share (time inside batch "
           "transactions, their wait for the batch before to commit included, over connections x sending time; the "
           "batches after the last line sent count too, so near 1 it can read slightly above), the mean events per "
           "batch, and the share of the daemon's arrival-to-visible time (pm_ingest_event_visible_seconds) spent "
           "before the event's batch began (pm_ingest_event_waiting_seconds: parsing, logging, the queue, a free "
           "connection). A free connection takes whatever is queued at once (adaptive batching), so the connections "
           "are busy most of the time well below the maximum, with small batches; near the maximum the batches grow "
           "instead.", "",
           "| load events/s | load + probes /s | connections | seconds | probes seen | visible p50 ms | p90 ms | p99 ms | "
           "max ms | from due p50 / p99 ms | poll period ms | ack p50 ms | ack p99 ms | target (ms) | met | writer busy | "
           "events per batch | waiting share |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in fresh + fresh_yielding:
        l = r["loadgen"]
        v, q = l["visible_ms"], l["ack_latency_ms"]
        target, met = freshness_target(r)
        label = f"{r['rate']:,} ({r['label']})" if r["label"].endswith("of max") else f"{r['rate']:,}"
        if "loadgen_sched" in r:
            label = f"{r['rate']:,} ({r['label']}, pm-loadgen SCHED_BATCH)"
        out.append(f"| {label} | "
                   f"{r['load_rate']:,} + {r['probes']:,} | {r['connections']} + 1 | {r['seconds']:g} | "
                   f"{v['count']:,} of {v['acked']:,} | {v['p50']:.2f} | {v['p90']:.2f} | {v['p99']:.2f} | {v['max']:.2f} | "
                   f"{from_due(v.get('from_due'), 'p50')} / {from_due(v.get('from_due'), 'p99')} | {v['poll_period_ms']:.2f} | {q['p50']:.2f} | {q['p99']:.2f} | {target} | "
                   f"{'' if met is None else ('yes' if met else '**no**')} | {' | '.join(writer_share(r))} |")
    return out + [""]


if fresh:
    md += freshness_section()

floor = [r for r in res if r["section"] == "floor"]
if floor:
    md += ["### Where the ack tail at 50 % comes from", "",
           "The 50 % run again, with the daemon's log in memory (/dev/shm, not durable: a measurement only) while "
           "`pm-log-probe` writes the same bytes per second to the disk with one write and one fdatasync per group, "
           "as an ideal log with no other work would (arrival to durable). The first row is the daemon's own share; "
           "the others are what the disk alone gives any log that shares it with PostgreSQL.", "",
           "| what | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms |", "|---|---|---|---|---|---|"]
    for r in floor:
        q = r["loadgen"]["ack_latency_ms"]
        md.append(f"| pm-ingestd ack, log in memory, {r['rate']:,}/s{' (beside the preallocated probe)' if r['preallocated'] else ''} | "
                  f"{q['p50']:.2f} | {q['p90']:.2f} | {q['p99']:.2f} | {q['p999']:.2f} | {q['max']:.2f} |")
    for r in floor:
        q = r["probe"]["latency_ms"]
        kind = "overwriting a zero-filled file" if r["preallocated"] else "appending"
        md.append(f"| ideal log on the disk, {kind}, {r['probe']['bytes_per_second'] / 1e6:.0f} MB/s | "
                  f"{q['p50']:.2f} | {q['p90']:.2f} | {q['p99']:.2f} | {q['p999']:.2f} | {q['max']:.2f} |")
    md.append("")

dup = [r for r in res if r["section"] == "dup"]
if dup:
    md += [f"### 10 % duplicates (`gen_trades.py --dup-ratio 0.1`: {dup[0]['lines']:,} lines, ~10 % repeating an earlier trade)", "",
           "| writer | lines/s | rows stored |", "|---|---|---|"]
    for r in dup:
        secs = r["loadgen"]["end_to_end"]["seconds"] if "loadgen" in r else r["seconds"]
        md.append(f"| {r['writer']} | {r['lines'] / secs:,.0f} | {r['rows']:,} |")
    md.append("")

es = [r for r in res if r["section"] == "event_sourcing"]
if es:
    e2e = statistics.median(rate(r) for r in writers["pm-ingestd"]) if "pm-ingestd" in writers else None
    md += ["### Event sourcing: ingestion with `--archive-dir`, and `pm-ingestctl replay` of that archive", "",
           "| run | rows/s | vs pm-ingestd end to end (median above) | notes |", "|---|---|---|---|"]
    for r in es:
        vs = f"{rate(r) / e2e:.2f}x" if e2e else "-"
        if "loadgen" in r:
            notes = (f"archive {r['archive_bytes'] / 2**20:,.1f} MiB on disk, live log left {r['live_log_bytes'] / 2**20:,.1f} MiB; "
                     "end to end as above, archiving in the background")
        else:
            notes = f"{r['rows']:,} rows from the archive and the live log into a fresh table, whole command"
        md.append(f"| {r['writer']} | {rate(r):,.0f} | {vs} | {notes} |")
    md.append("")

bl = [r for r in res if r["section"] == "backlog"]
for r in bl:
    md += [f"### Backlog: PostgreSQL down while {r['events']:,} events arrive, then back", "",
           "A throwaway PostgreSQL 15 cluster (default settings, its own port) is stopped; pm-loadgen sends "
           f"{r['events']:,} generated trades (unlimited rate, {r['loadgen']['throughput_eps']:,.0f} acks/s); "
           "the cluster is started again and the daemon drains its log.", "",
           "| figure | value |", "|---|---|",
           f"| daemon RSS before the backlog | {r['rss_start_kib'] / 1024:.0f} MiB |",
           f"| peak RSS (VmHWM) with the backlog, PostgreSQL down | **{r['hwm_down_kib'] / 1024:.0f} MiB** |",
           f"| peak RSS (VmHWM) after the drain | {r['hwm_after_drain_kib'] / 1024:.0f} MiB |",
           f"| unapplied events / log bytes | {r['unapplied']:,} / {r['wal_bytes'] / 2**20:,.0f} MiB |",
           f"| drain time once PostgreSQL is up again (the writer's reconnect back-off, at most 5 s, included) | "
           f"**{r['drain_seconds']:.1f} s** ({r['rows'] / r['drain_seconds']:,.0f} rows/s) |",
           f"| rows in PostgreSQL after the drain | {r['rows']:,} |", ""]

KEEP_BELOW = "<!-- bench/report.py writes the sections above this line; the sections below it are kept as they are -->"


def kept_part(path):
    """What a new report keeps of the results.md at `path`: the text after KEEP_BELOW, or the whole
    file when it lacks that line (nothing when there is no file)."""
    try:
        old = open(path).read()
    except FileNotFoundError:
        return ""
    at = old.find(KEEP_BELOW)
    return old if at < 0 else old[at + len(KEEP_BELOW):].lstrip("\n")


def write_report(path):
    """The generated Markdown, KEEP_BELOW, then the kept part; written beside and renamed over."""
    kept = kept_part(path)
    text = "\n".join(md) + "\n" + KEEP_BELOW + "\n" + ("\n" + kept if kept else "")
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


write_report(f"{a.out_dir}/results.md")
print("\n".join(md))

def writers_figure():
    """results.png: throughput per writer; ack latency against load."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5.2))
    names = [w for w in order if w in writers]
    meds = [statistics.median(rate(r) for r in writers[w]) for w in names]
    colors = ["#4c72b0" if not w.startswith("pm-ingestd") else "#dd8452" for w in names]
    bars = ax1.barh(range(len(names)), meds, color=colors)
    ax1.set_yticks(range(len(names)))
    ax1.set_yticklabels(names)
    ax1.invert_yaxis()
    ax1.set_xlabel("rows/s (median of runs)")
    ax1.set_title(f"Throughput per writer, {writers['psql copy (text)'][0]['rows']:,} trades")
    for b, m in zip(bars, meds):
        ax1.text(b.get_width(), b.get_y() + b.get_height() / 2, f" {m:,.0f}", va="center", fontsize=9)
    ax1.set_xlim(0, max(meds) * 1.25)
    if lat:
        xs = [r["loadgen"]["throughput_eps"] for r in lat]
        for key, style in (("p50", "o-"), ("p90", "s-"), ("p99", "^-"), ("p999", "v--")):
            ax2.plot(xs, [r["loadgen"]["ack_latency_ms"][key] for r in lat], style, label=key.replace("p999", "p99.9"))
        for r, x in zip(lat, xs):
            ax2.annotate(f"{r['percent']} % of max", (x, r["loadgen"]["ack_latency_ms"]["p999"]), textcoords="offset points",
                         xytext=(0, 8), ha="center", fontsize=8)
        ax2.axhline(5, color="grey", linestyle=":", label="5 ms target (p99 at 50 %)")
        ax2.set_yscale("log")
        ax2.set_xlabel("achieved acks/s (4 connections, paced)")
        ax2.set_ylabel("ack latency, ms (log scale)")
        ax2.set_title("pm-ingestd ack latency against load")
        ax2.legend(loc="upper center", ncol=3, fontsize=8)
        ax2.set_ylim(top=max(r["loadgen"]["ack_latency_ms"]["p999"] for r in lat) * 8)
        ax2.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(f"{a.out_dir}/results.png", dpi=110)


def freshness_figure():
    """results-freshness.png: visible latency (and the load's ack latency) against the offered rate, log-log."""
    fig, ax = plt.subplots(figsize=(7.5, 5.2))
    xs = [r["rate"] for r in fresh]
    for key, style, label in (("p50", "o-", "visible p50"), ("p99", "^-", "visible p99"), ("max", "v:", "visible max")):
        ax.plot(xs, [r["loadgen"]["visible_ms"][key] for r in fresh], style, label=label)
    ax.plot(xs, [r["loadgen"]["ack_latency_ms"]["p99"] for r in fresh], "s--", color="grey", label="ack p99 (load)")
    for r in fresh:
        if r["label"].endswith("of max"):
            ax.annotate(r["label"], (r["rate"], r["loadgen"]["visible_ms"]["max"]), textcoords="offset points",
                        xytext=(0, 8), ha="center", fontsize=8)
    ax.axhline(10, color="#c44e52", linestyle=":", label="10 ms target (p99 at <= 1,000/s)")
    ax.axhline(50, color="#8172b2", linestyle=":", label="50 ms target (p99 at 50 % of max)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(top=max(50, max(r["loadgen"]["visible_ms"]["max"] for r in fresh)) * 4)
    ax.set_xlabel("offered events/s (paced, probes included)")
    ax.set_ylabel("ms (log scale)")
    ax.set_title("pm-ingestd freshness: line written to row visible in another session")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(f"{a.out_dir}/results-freshness.png", dpi=110)


if full:
    writers_figure()
if fresh:
    freshness_figure()
