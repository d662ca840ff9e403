#!/usr/bin/env python3
# SPDX-License-Identifier: BSL-1.0
"""Turns the raw outputs of scripts/bench.sh into bench/results/latest.json, latest.md and the
data files of the latency plot (bench/plot_latency.gp).

usage: report.py RAW_DIR OUT_DIR

RAW_DIR holds what bench.sh collected:
  manager.jsonl         bench_sessions lines (kind "manager" or "micro")
  redis_benchmark.tsv   payload <TAB> label <TAB> value bytes <TAB> CSV file of redis-benchmark --csv
  http.jsonl            one line per wrk run (kind "http"; "rep": its repetition of the matrix)
  meta.json             run facts (date, commit, machine load, durations, notes)
Manager lines of a Redis Cluster ("deployment": "cluster") are reported apart, against the
single node's cells of the same run.
Targets are reported, never enforced: the exit status is 0 whatever they say.
"""
import csv
import json
import os
import sys

raw, out = sys.argv[1], sys.argv[2]


def read_jsonl(name):
    path = os.path.join(raw, name)
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


meta = {}
if os.path.exists(os.path.join(raw, "meta.json")):
    with open(os.path.join(raw, "meta.json")) as f:
        meta = json.load(f)

rows = read_jsonl("manager.jsonl")
manager = [r for r in rows if r["kind"] == "manager" and r.get("deployment") != "cluster"]
cluster = [r for r in rows if r["kind"] == "manager" and r.get("deployment") == "cluster"]
micro = [r for r in rows if r["kind"] == "micro"]
http_runs = read_jsonl("http.jsonl")


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


# HTTP: the repetitions of each cell (endpoint, store, threads, sessions, connections) folded into
# one row: medians of the figures, and the spread (min, max) of requests/s and p99 across them.
def http_key(h):
    return (h["endpoint"], h["store"], h["threads"], h.get("sessions", 1), h["connections"])


http_reps = {}
for h in http_runs:
    http_reps.setdefault(http_key(h), []).append(h)
http = []
for key, hs in http_reps.items():
    hs.sort(key=lambda h: h.get("rep", 0))
    a = {"endpoint": key[0], "store": key[1], "threads": key[2], "sessions": key[3],
         "connections": key[4], "reps": len(hs), "requests": sum(h["requests"] for h in hs),
         "errors": sum(h["errors"] for h in hs), "max_us": max(h["max_us"] for h in hs),
         "per_rep": {h.get("rep", 0): h for h in hs}}
    for k in ("ops_per_s", "p50_us", "p90_us", "p99_us", "p999_us"):
        a[k] = median([h[k] for h in hs])
    for k in ("ops_per_s", "p99_us"):
        a[k + "_min"] = min(h[k] for h in hs)
        a[k + "_max"] = max(h[k] for h in hs)
    if key[0] == "/visits":
        a["conflicts"] = median([h.get("conflicts", 0) for h in hs])
        a["payload"] = max(h.get("payload", 0) for h in hs)
        checks = [h.get("session_check", "") for h in hs]
        wrong = [c for c in checks if not c.endswith(": ok")]
        a["session_check"] = (f"{len(checks) - len(wrong)}/{len(checks)} repetitions ok"
                              + (": " + "; ".join(wrong) if wrong else ""))
    http.append(a)

# ---------------------------------------------------------------------------------------------
# Baselines
baselines = []
rb = {}  # (payload, "GET -c 1") -> baseline
tsv = os.path.join(raw, "redis_benchmark.tsv")
if os.path.exists(tsv):
    with open(tsv) as f:
        for line in f:
            if not line.strip():
                continue
            payload, label, value_bytes, path = line.rstrip("\n").split("\t")
            if not os.path.exists(path):
                continue
            with open(path) as c:
                for rec in csv.DictReader(c):
                    name = f"redis-benchmark {rec['test']} {label}"
                    b = {
                        "name": name,
                        "kind": "redis-benchmark",
                        "payload": int(payload),
                        "value_bytes": int(value_bytes),
                        "ops_per_s": float(rec["rps"]),
                        "p50_us": float(rec["p50_latency_ms"]) * 1000,
                        "p95_us": float(rec["p95_latency_ms"]) * 1000,
                        "p99_us": float(rec["p99_latency_ms"]) * 1000,
                        "max_us": float(rec["max_latency_ms"]) * 1000,
                        "avg_us": float(rec["avg_latency_ms"]) * 1000,
                    }
                    baselines.append(b)
                    rb[(int(payload), f"{rec['test']} {label}")] = b

mic = {}  # (payload, name) -> micro row
for m in micro:
    b = {
        "name": m["scenario"],
        "kind": "micro",
        "payload": m["payload"],
        "value_bytes": m["plain_bytes"],
        "ops_per_s": m["ops_per_s"],
        "p50_us": m["p50_us"],
        "p90_us": m["p90_us"],
        "p99_us": m["p99_us"],
        "p999_us": m["p999_us"],
    }
    baselines.append(b)
    mic[(m["payload"], m["scenario"])] = b

wrk_base = {}  # (threads, store, connections) -> wrk runs of /healthz (median of the repetitions)
for h in http:
    if h["endpoint"] == "/healthz":
        b = {
            "name": f"wrk /healthz -c {h['connections']} (server {h['threads']} threads, {h['store']} store, median of {h['reps']})",
            "kind": "http",
            "payload": 0,
            "ops_per_s": h["ops_per_s"],
            "p50_us": h["p50_us"],
            "p90_us": h["p90_us"],
            "p99_us": h["p99_us"],
            "p999_us": h["p999_us"],
        }
        baselines.append(b)
        wrk_base[(h["threads"], h["store"], h["connections"])] = b


def combine(name, parts, threads=1):
    """A floor made of steps done one after the other: latencies add, throughput follows."""
    if any(p is None for p in parts):
        return None
    p50 = sum(p["p50_us"] for p in parts)
    return {"name": name, "p50_us": p50, "ops_per_s": threads * 1e6 / p50 if p50 else 0}


def floor_for(r):
    """The physical floor a manager figure is compared with."""
    pl, enc = r["payload"], r["cipher"] == "aes_gcm"
    if r["store"] == "memory":
        get = lambda n: mic.get((pl, n))
        open_ = [get("aes-gcm open")] if enc else []
        seal = [get("aes-gcm seal")] if enc else []
        read = [get("map find+copy")] + open_ + [get("json parse")]
        write = [get("json serialize")] + seal + [get("map find+copy")]
        what = {
            "load": ("floor: map find+copy" + (" + aes open" if enc else "") + " + json parse", read),
            "create": ("floor: json serialize" + (" + aes seal" if enc else "") + " + map copy", write),
            "rotate": ("floor: json serialize" + (" + aes seal" if enc else "") + " + map copy", write),
            "load_save": ("floor: load floor + save floor", read + write),
            "destroy": ("floor: map find+copy", [get("map find+copy")]),
        }[r["scenario"]]
        return combine(what[0], what[1], r["threads"])
    # Redis: the nearest raw commands, same payload, same kind of concurrency.
    c = "-c 1" if r["concurrency"] == 1 else "-c 50"
    g, s = rb.get((pl, f"GET {c}")), rb.get((pl, f"SET {c}"))
    if r["scenario"] in ("load", "conn_get", "store_load", "socket_get"):
        return g
    if r["scenario"] == "load_save":
        if g is None or s is None:
            return None
        return {"name": f"redis-benchmark GET {c} + SET {c}", "p50_us": g["p50_us"] + s["p50_us"],
                "ops_per_s": 1 / (1 / g["ops_per_s"] + 1 / s["ops_per_s"])}
    return s  # create, rotate, destroy: one write round trip


def ratio(a, b):
    return round(a / b, 3) if a and b else None


FIELDS = ("scenario", "store", "cipher", "payload", "concurrency", "sessions", "threads",
          "ops_per_s", "p50_us", "p90_us", "p99_us", "p999_us", "max_us", "samples", "errors",
          "plain_bytes", "stored_bytes")
results = []
rounds = []  # tagged rows: the repeated target rounds, kept out of the main table
for r in manager:
    if r.get("tag"):
        rounds.append(r)
        continue
    f = floor_for(r)
    res = {k: r[k] for k in FIELDS}
    res["level"] = "manager"
    res["baseline"] = f["name"] if f else None
    res["ops_ratio"] = ratio(r["ops_per_s"], f["ops_per_s"]) if f else None
    # Latency ratios only where both sides are one request at a time.
    res["p50_ratio"] = ratio(r["p50_us"], f["p50_us"]) if f and r["concurrency"] == 1 else None
    results.append(res)

for h in http:
    if h["endpoint"] == "/healthz":
        continue
    # /healthz runs on the memory store's server only (with Redis it would add a PING): the
    # HTTP floor of every store.
    b = wrk_base.get((h["threads"], "memory", h["connections"]))
    sessions = h.get("sessions", 1)
    results.append({
        "scenario": "http " + h["endpoint"] + (f" ({sessions} sessions)" if sessions > 1 else ""),
        "sessions": sessions, "conflicts": h.get("conflicts"), "store": h["store"], "cipher": "aes_gcm",
        "payload": h.get("payload", 0), "concurrency": h["connections"], "threads": h["threads"],
        "ops_per_s": h["ops_per_s"], "p50_us": h["p50_us"], "p90_us": h["p90_us"],
        "p99_us": h["p99_us"], "p999_us": h["p999_us"], "max_us": h["max_us"],
        "samples": h["requests"], "errors": h["errors"], "level": "http",
        "baseline": b["name"] if b else None,
        "ops_ratio": ratio(h["ops_per_s"], b["ops_per_s"]) if b else None,
        "p50_ratio": ratio(h["p50_us"], b["p50_us"]) if b else None,
        "session_check": h.get("session_check"), "reps": h["reps"],
        "ops_per_s_min": h["ops_per_s_min"], "ops_per_s_max": h["ops_per_s_max"],
        "p99_us_min": h["p99_us_min"], "p99_us_max": h["p99_us_max"],
    })


# ---------------------------------------------------------------------------------------------
# Targets
def find(level="manager", **kw):
    for r in results:
        if r["level"] == level and all(r.get(k) == v for k, v in kw.items()):
            return r
    return None


targets = []


def target(name, measured, limit, met, detail):
    targets.append({"name": name, "measured": measured, "limit": limit,
                    "met": bool(met) if met is not None else None, "detail": detail})


m = find(scenario="load", store="memory", cipher="aes_gcm", payload=1024, concurrency=1, threads=1)
if m:
    target("memory store, 1 KB encrypted, load p50 < 5 us", round(m["p50_us"], 2), 5.0,
           m["p50_us"] < 5.0, f"p50 {m['p50_us']:.2f} us")
    target("memory store, 1 KB encrypted, >= 200k loads/s on one thread", round(m["ops_per_s"]),
           200000, m["ops_per_s"] >= 200000, f"{m['ops_per_s']:.0f} loads/s")
# The Redis targets are the store's (issue 3: the client and redis_store): redis_store::load of
# a 1 KB encrypted session against redis-benchmark GET of a value of the same size, judged on
# the median ratio of repeated rounds (a baseline, then the store right after it). What the
# manager adds on top (AES-GCM open and JSON parse: CPU work that redis-benchmark does not do)
# is reported beside it, with the bare connection GET (the client's own floor), from the main
# cells.
T1 = "redis store, 1 KB encrypted session, 1 coroutine: redis_store::load p50 <= 1.15x redis-benchmark -c 1 GET p50"
T64 = "redis store, 1 KB encrypted sessions, 64 coroutines on one connection: redis_store::load ops/s >= 2.5x redis-benchmark -c 50 GET"


def round_ratios(concurrency, label, metric, scenario="store_load"):
    """[(k, scenario's value, baseline value, value / baseline)] for every complete round."""
    out = []
    for r in rounds:
        if not (r["scenario"] == scenario and r["concurrency"] == concurrency and r["payload"] == 1024):
            continue
        k = r["tag"].split()[-1]
        b = rb.get((1024, f"GET {label} round {k}"))
        if b and b[metric] and r[metric]:
            out.append((k, r[metric], b[metric], r[metric] / b[metric]))
    return out


# A round is disturbed when its baseline or its store value is this much worse than that side's
# median over the rounds (a higher p50, or fewer ops/s): something else had the CPUs meanwhile,
# and the round's ratio says more about that than about the client (on 2026-11-28 one round's
# redis-benchmark p50 was 383 us against 111-151 us in the others, a ratio of 0.48x). Only a
# worse value counts, on either side, so dropping rounds favours neither. The verdict is taken
# over the other rounds while at least 3 remain; otherwise over all of them.
DISTURBED = 1.25
MIN_KEPT = 3


def drop_disturbed(rr, higher_is_worse):
    """(kept rounds, dropped rounds, whether the drop was applied) of round_ratios' output."""
    if len(rr) < MIN_KEPT:
        return rr, [], False
    med_v, med_b = median([x[1] for x in rr]), median([x[2] for x in rr])

    def worse(x, m):
        return x > m * DISTURBED if higher_is_worse else x < m / DISTURBED

    dropped = [x for x in rr if worse(x[1], med_v) or worse(x[2], med_b)]
    kept = [x for x in rr if x not in dropped]
    if len(kept) < MIN_KEPT:
        return rr, dropped, False
    return kept, dropped, True


def round_verdict(rr, higher_is_worse, fmt):
    """(median ratio, how it was taken, every round listed, the rounds judged on)."""
    kept, dropped, applied = drop_disturbed(rr, higher_is_worse)
    med = median([x[3] for x in kept])
    per = ", ".join(fmt(*x[1:]) + (" (disturbed)" if x in dropped else "") for x in rr)
    if not dropped:
        how = f"median {med:.2f}x over {len(rr)} rounds"
    elif applied:
        how = (f"median {med:.2f}x over the {len(kept)} undisturbed of {len(rr)} rounds (all "
               f"{len(rr)}: {median([x[3] for x in rr]):.2f}x; a round is disturbed when its "
               f"baseline or store value is over {DISTURBED - 1:.0%} worse than that side's median)")
    else:
        how = (f"median {med:.2f}x over all {len(rr)} rounds (only {len(rr) - len(dropped)} "
               f"undisturbed: too few to judge on)")
    return med, how, per, {x[0] for x in kept}


def context(metric, fmt, base, conn, manager, manager_note):
    """The main cells beside a target: the bare connection GET and the manager's load."""
    more = ""
    if base and conn:
        more += f"; main cells: bare connection GET {fmt(conn[metric])} ({conn[metric] / base[metric]:.2f}x)"
    if base and manager:
        more += (f", manager async_load ({manager_note}) {fmt(manager[metric])} "
                 f"({manager[metric] / base[metric]:.2f}x)")
    return more


g1 = rb.get((1024, "GET -c 1"))
m1 = find(scenario="load", store="redis", cipher="aes_gcm", payload=1024, concurrency=1, threads=1)
cg1 = find(scenario="conn_get", store="redis", payload=1024, concurrency=1, threads=1)
rr1 = round_ratios(1, "-c 1", "p50_us")
# The same rounds' blocking-socket GET: what any client measured end to end gets (redis-benchmark
# stops its clock when the reply becomes readable, before reading and parsing it).
sg1 = round_ratios(1, "-c 1", "p50_us", scenario="socket_get")
if rr1:
    med, how, per, judged = round_verdict(rr1, True,
                                          lambda v, b, q: f"{v:.1f}/{b:.1f} us = {q:.2f}x")
    floor = ""
    sg_judged = [x[3] for x in sg1 if x[0] in judged]
    if sg_judged:
        floor = (f"; in the same rounds a blocking-socket GET without Asio (socket_get) reached "
                 f"median {median(sg_judged):.2f}x")
    # The same rounds against socket_get instead: both sides exact to 0.1 us and timed end to
    # end, so neither redis-benchmark's 8 us buckets nor its shorter clock enter this ratio.
    sg_p50 = {x[0]: x[1] for x in sg1}
    vs_socket = [x[1] / sg_p50[x[0]] for x in rr1 if x[0] in judged and x[0] in sg_p50]
    if vs_socket:
        floor += (f"; store p50 / socket_get p50 in the same rounds (no bucket rounding, both "
                  f"timed end to end): median {median(vs_socket):.2f}x")
    target(T1, round(med, 3), "1.15x", med <= 1.15,
           f"{how} (store p50 / GET p50: {per})" + floor +
           context("p50_us", lambda v: f"{v:.1f} us", g1, cg1, m1, "adds open + parse"))
else:
    target(T1, None, None, None, "not measured")

g50 = rb.get((1024, "GET -c 50"))
m64 = find(scenario="load", store="redis", cipher="aes_gcm", payload=1024, concurrency=64, threads=1)
cg64 = find(scenario="conn_get", store="redis", payload=1024, concurrency=64, threads=1)
rr64 = round_ratios(64, "-c 50", "ops_per_s")
if rr64:
    med, how, per, _ = round_verdict(rr64, False, lambda v, b, q: f"{v:.0f}/{b:.0f} = {q:.2f}x")
    target(T64, round(med, 3), "2.5x", med >= 2.5,
           f"{how} (store ops/s / GET -c 50 ops/s, 1 io_context thread: {per})" +
           context("ops_per_s", lambda v: f"{v:.0f}", g50, cg64, m64,
                   "adds open + parse, CPU-bound on the one client core"))
else:
    target(T64, None, None, None, "not measured")

# The manager's async_load in the same rounds (issue 17): with one coroutine against the same
# round's socket_get (both timed end to end, exact to 0.1 us), with 64 coroutines against the
# round's redis-benchmark -c 50.
TM1 = ("redis store, 1 KB encrypted session, 1 coroutine: manager async_load p50 <= 1.10x "
       "socket_get p50 (a blocking-socket GET) in the same rounds")
TM64 = ("redis store, 1 KB encrypted sessions, 64 coroutines on one connection: manager "
        "async_load ops/s >= 4x redis-benchmark -c 50 GET")
ml1 = {x[0]: x[1] for x in round_ratios(1, "-c 1", "p50_us", scenario="load")}
rm1 = [(x[0], ml1[x[0]], x[1], ml1[x[0]] / x[1]) for x in sg1 if x[0] in ml1]
if rm1:
    med, how, per, _ = round_verdict(rm1, True, lambda v, b, q: f"{v:.1f}/{b:.1f} us = {q:.2f}x")
    target(TM1, round(med, 3), "1.10x", med <= 1.10,
           f"{how} (manager load p50 / socket_get p50: {per}); the baseline is the same GET on a "
           "blocking socket without Asio; the manager adds the store's version header, the AES "
           "open and the JSON parse")
else:
    target(TM1, None, None, None, "not measured")
rm64 = round_ratios(64, "-c 50", "ops_per_s", scenario="load")
if rm64:
    med, how, per, _ = round_verdict(rm64, False, lambda v, b, q: f"{v:.0f}/{b:.0f} = {q:.2f}x")
    target(TM64, round(med, 3), "4x", med >= 4.0,
           f"{how} (manager ops/s / GET -c 50 ops/s, 1 io_context thread: {per}); CPU-bound on "
           "the one client thread, which also runs the connection (AES open and JSON parse of "
           "every session)")
else:
    target(TM64, None, None, None, "not measured")

# One manager shared by 2 io_contexts of one thread each: one Redis client on io_context 0
# against one client per io_context, alternated (tag "ioc k").
ioc_runs = {}
for r in manager:
    if r.get("ioc_pool") and str(r.get("tag", "")).startswith("ioc "):
        ioc_runs.setdefault(r["tag"].split()[-1], {})[r["ioc_pool"]] = r
ioc_pairs = [(k, v["own"], v["shared"]) for k, v in sorted(ioc_runs.items())
             if "own" in v and "shared" in v]
ioc_doc = None
if ioc_pairs:
    ioc_doc = {
        "pairs": [{"rep": k, "own_ops_per_s": o["ops_per_s"], "shared_ops_per_s": sh["ops_per_s"],
                   "own_p50_us": o["p50_us"], "shared_p50_us": sh["p50_us"],
                   "own_p99_us": o["p99_us"], "shared_p99_us": sh["p99_us"],
                   "own_cpu_us_per_op": o.get("client_cpu_us_per_op"),
                   "shared_cpu_us_per_op": sh.get("client_cpu_us_per_op")}
                  for k, o, sh in ioc_pairs],
        "own_over_shared_ops_median": round(median([o["ops_per_s"] / sh["ops_per_s"]
                                                    for _, o, sh in ioc_pairs]), 3),
        "own_over_shared_p99_median": round(median([o["p99_us"] / sh["p99_us"]
                                                    for _, o, sh in ioc_pairs]), 3),
    }

# Redis Cluster: the same reads on a cluster of 3 masters, each against the single node's cell of
# the same scenario in the same run. The target is what routing costs one request at a time (the
# key's slot, its master's connection among three): like the targets above it is the median over
# the rounds, each round's cluster cell right after the single node's with the same sessions.
# With 64 coroutines the figure is throughput, with no target.
TC = "cluster routing overhead: store_load p50 on a 3-master cluster <= 1.10x single node, 1 coroutine"
cluster_rounds = [r for r in cluster if r.get("tag")]
for r in cluster:
    if r.get("tag"):
        continue
    one = find(scenario=r["scenario"], store="redis", cipher=r["cipher"], payload=r["payload"],
               concurrency=r["concurrency"], threads=r["threads"], sessions=r["sessions"])
    res = {k: r[k] for k in FIELDS}
    res.update(level="cluster", masters=r.get("masters"), keys_per_master=r.get("keys_per_master"))
    res["baseline"] = f"single node {r['scenario']} (same run)" if one else None
    res["ops_ratio"] = ratio(r["ops_per_s"], one["ops_per_s"]) if one else None
    res["p50_ratio"] = ratio(r["p50_us"], one["p50_us"]) if one and r["concurrency"] == 1 else None
    results.append(res)


def cluster_round_ratios(concurrency, metric):
    """[(k, cluster value, single-node value, cluster / single)] for every round with both."""
    def of(rs):
        return {r["tag"]: r for r in rs if r["scenario"] == "store_load"
                and r["concurrency"] == concurrency and r["payload"] == 1024}
    single = of(rounds)
    out = []
    for tag, c in of(cluster_rounds).items():
        one = single.get(tag)
        if one and one[metric] and c[metric]:
            out.append((tag.split()[-1], c[metric], one[metric], c[metric] / one[metric]))
    return out


def spread(concurrency):
    """How the rounds' sessions lay on the masters (keys on each master after setup)."""
    return ", ".join("/".join(str(n) for n in r.get("keys_per_master", []))
                     for r in cluster_rounds if r["concurrency"] == concurrency)


cluster_doc = {"url": meta.get("cluster") or None, "skipped": meta.get("cluster_skipped") or None,
               "masters": cluster[0].get("masters") if cluster else None}
rc1 = cluster_round_ratios(1, "p50_us")
if rc1:
    med, how, per, _ = round_verdict(rc1, True, lambda v, b, q: f"{v:.1f}/{b:.1f} us = {q:.2f}x")
    more = f"; sessions per master in each round: {spread(1)}"
    c1 = find(level="cluster", scenario="store_load", concurrency=1)
    if c1 and c1["p50_ratio"]:
        more += f"; main cells: store_load {c1['p50_us']:.1f} us ({c1['p50_ratio']:.2f}x)"
        for sc, what in (("conn_get", "bare GET"), ("load", "manager async_load")):
            c = find(level="cluster", scenario=sc, concurrency=1)
            if c and c["p50_ratio"]:
                more += f", {what} {c['p50_us']:.1f} us ({c['p50_ratio']:.2f}x)"
    target(TC, round(med, 3), "1.10x", med <= 1.10,
           f"{how} (cluster p50 / single-node p50: {per})" + more)
    cluster_doc["routing_overhead_c1"] = {"p50_ratio": med, "detail": f"{how}: {per}"}
else:
    target(TC, None, "1.10x", None, meta.get("cluster_skipped") or "not measured")
rc64 = cluster_round_ratios(64, "ops_per_s")
if rc64:
    med, how, per, judged = round_verdict(rc64, False, lambda v, b, q: f"{v:.0f}/{b:.0f} = {q:.2f}x")
    kept = [r for r in cluster_rounds if r["concurrency"] == 64 and r["scenario"] == "store_load"
            and r["tag"].split()[-1] in judged]
    fig = {k: median([r[k] for r in kept]) for k in ("ops_per_s", "p50_us", "p90_us", "p99_us", "p999_us")}
    fig["single_ops_per_s"] = median([x[2] for x in rc64 if x[0] in judged])
    fig["ops_ratio"] = med
    fig["detail"] = (f"{how} (cluster ops/s / single-node ops/s: {per}); sessions per master in "
                     f"each round: {spread(64)}")
    cluster_doc["store_load_c64"] = fig
# Judged with 16 wrk connections: enough to keep both CPUs busy, without the queueing that a
# closed loop of 64 adds by itself (at 50k req/s, 64 connections mean 1.28 ms per request).
h = find(level="http", scenario="http /visits", store="memory", threads=2, concurrency=16)
h_free = find(level="http", scenario="http /visits (16 sessions)", store="memory", threads=2)
also = ""
if h and h.get("conflicts") is not None:
    also = f"; {h['conflicts']} version conflicts (retried)"
if h_free:
    also += (f"; with 16 sessions (no contention): {h_free['ops_per_s']:.0f} req/s, "
             f"p99 {h_free['p99_us'] / 1000:.2f} ms")
if h:
    target("HTTP /visits, memory store, 2 threads: >= 50k requests/s", round(h["ops_per_s"]), 50000,
           h["ops_per_s"] >= 50000,
           f"{h['ops_per_s']:.0f} req/s with 16 wrk connections on one session, {h['errors']} errors" + also)
    target("HTTP /visits, memory store, 2 threads: p99 < 2 ms", round(h["p99_us"]), 2000,
           h["p99_us"] < 2000, f"p99 {h['p99_us'] / 1000:.2f} ms with 16 wrk connections on one session" + also)
else:
    why = meta.get("http_skipped", "not measured")
    target("HTTP /visits, memory store, 2 threads: >= 50k requests/s", None, 50000, None, why)
    target("HTTP /visits, memory store, 2 threads: p99 < 2 ms", None, 2000, None, why)

# The issue-17 ratios, each judged on the median of per-repetition ratios: a repetition runs
# every cell once, the two sides of a ratio within the same minute, so each pair shares the
# machine's state of that minute. Spread: the lowest and highest of those ratios.
def http_cell(endpoint, store, threads, sessions):
    for h in http:
        if (h["endpoint"], h["store"], h["threads"], h["sessions"]) == (endpoint, store, threads, sessions):
            return h
    return None


def cell_name(endpoint, store, sessions):
    if endpoint == "/healthz":
        return "/healthz"
    return f"/visits {store} " + ("16 sessions" if sessions > 1 else "1 hot session")


http_ratios = []


def http_ratio(kind, name, a, b, limit):
    """a / b in requests/s, per repetition; a target row with `limit` (a lower bound)."""
    if not a or not b:
        target(name, None, f"{limit}x", None, meta.get("http_skipped") or "not measured")
        return
    pairs = sorted((k, a["per_rep"][k]["ops_per_s"], b["per_rep"][k]["ops_per_s"])
                   for k in a["per_rep"] if k in b["per_rep"])
    qs = [x / y for _, x, y in pairs if y]
    if not qs:
        target(name, None, f"{limit}x", None, "no repetition measured both sides")
        return
    med = median(qs)
    per = ", ".join(f"{x:.0f}/{y:.0f} = {x / y:.2f}x" for _, x, y in pairs if y)
    detail = (f"median {med:.2f}x (spread {min(qs):.2f}-{max(qs):.2f}x) over {len(qs)} "
              f"repetitions: {per}")
    http_ratios.append({"kind": kind, "name": name, "ratio": med, "min": min(qs), "max": max(qs),
                        "reps": len(qs), "per_rep": [x / y for _, x, y in pairs if y],
                        "limit": limit})
    target(name, round(med, 3), f"{limit}x", med >= limit, detail)


http_cells_spec = [("/healthz", "memory", 1)] + [("/visits", st, n) for st in ("memory", "redis")
                                                 for n in (16, 1)]
for ep, st, n in http_cells_spec:
    http_ratio("threads", f"HTTP {cell_name(ep, st, n)}: 2 server threads >= 1.15x 1 thread (req/s)",
               http_cell(ep, st, 2, n), http_cell(ep, st, 1, n), 1.15)
for t in (1, 2):
    for ep, st, n in http_cells_spec[1:]:
        http_ratio("visits_vs_healthz",
                   f"HTTP {cell_name(ep, st, n)} >= 0.9x /healthz, {t} thread{'s' if t > 1 else ''} (req/s)",
                   http_cell(ep, st, t, n), http_cell("/healthz", "memory", t, 1), 0.9)

# ---------------------------------------------------------------------------------------------
# Memory per stored session (bench_sessions --footprint lines): the memory store's resident-set
# growth over N stored sessions, and redis-server's used_memory growth, divided by N.
FOOT_LIMIT = 1536  # bytes: 1.5 KB per session of 1 KB (1024 B) of data
footprints = [r for r in rows if r["kind"] == "footprint"]
memory_doc = []
for r in footprints:
    e = {k: r.get(k) for k in ("store", "cipher", "payload", "sessions", "bound", "stored",
                                "plain_bytes", "stored_bytes", "key_bytes", "user_index_bytes")}
    if r["store"] == "memory":
        e.update(resident_per_session=r["rss_per_session"],
                 resident_untrimmed_per_session=r["rss_untrimmed_per_session"],
                 allocated_per_session=r["heap_per_session"],
                 accounted_per_session=r["accounted_per_session"])
        e["per_session"] = r["rss_per_session"]
    else:
        e.update(used_memory_per_session=r["used_memory_per_session"],
                 used_memory_before=r["used_memory_before"], used_memory_after=r["used_memory_after"],
                 keys_after=r["keys_after"])
        e["per_session"] = r["used_memory_per_session"]
    e["overhead_per_session"] = e["per_session"] - r["stored_bytes"]
    memory_doc.append(e)


def footprint(store, bound):
    for e in memory_doc:
        if e["store"] == store and e["cipher"] == "aes_gcm" and e["payload"] == 1024 and \
                bool(e["bound"]) == bound:
            return e
    return None


TM = "memory store, 1 KB encrypted sessions: <= 1.5 KB resident per stored session (100k sessions)"
fm = footprint("memory", False)
if fm:
    more = ""
    fb, fr, frb = footprint("memory", True), footprint("redis", False), footprint("redis", True)
    if fb:
        more += f"; bound to a user each: {fb['per_session']:.0f} B"
    if fr:
        more += f"; Redis used_memory: {fr['per_session']:.0f} B"
        if frb:
            more += f" ({frb['per_session']:.0f} B bound)"
    target(TM, round(fm["per_session"]), FOOT_LIMIT, fm["per_session"] <= FOOT_LIMIT,
           f"{fm['per_session']:.0f} B resident per session over {fm['stored']} anonymous sessions "
           f"({fm['plain_bytes']} B serialized, {fm['stored_bytes']} B sealed, key {fm['key_bytes']} B; "
           f"{fm['allocated_per_session']:.0f} B allocated)" + more)
else:
    target(TM, None, FOOT_LIMIT, None, "not measured")

# ---------------------------------------------------------------------------------------------
# latest.json
os.makedirs(out, exist_ok=True)
def tidy(v):
    if isinstance(v, float):
        return round(v, 1) if abs(v) >= 100 else round(v, 3)
    if isinstance(v, dict):
        return {k: tidy(x) for k, x in v.items()}
    if isinstance(v, list):
        return [tidy(x) for x in v]
    return v


http_cells = [{k: v for k, v in h.items() if k != "per_rep"} |
              {"ops_per_s_reps": [r["ops_per_s"] for _, r in sorted(h["per_rep"].items())],
               "p99_us_reps": [r["p99_us"] for _, r in sorted(h["per_rep"].items())]}
              for h in http]
doc = tidy({"meta": meta, "results": results, "baselines": baselines, "targets": targets,
            "cluster": cluster_doc, "memory": memory_doc, "http_cells": http_cells,
            "http_ratios": http_ratios, "io_context_pool": ioc_doc})
with open(os.path.join(out, "latest.json"), "w") as f:
    json.dump(doc, f, indent=1)
    f.write("\n")


# ---------------------------------------------------------------------------------------------
# latest.md
def num(v, digits=1):
    if v is None:
        return "–"
    if isinstance(v, str):
        return v
    if isinstance(v, (int, float)) and abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.{digits}f}"


def x(v):
    return "–" if v is None else f"{v:.2f}x"


md = ["# websession benchmark results", ""]
md.append(f"Run {meta.get('date', '?')} at commit `{meta.get('commit', '?')}` "
          f"({meta.get('commit_note', '')}) on {meta.get('cpus', '?')} CPUs: suite "
          f"{meta.get('run_seconds', '?')} s after a {meta.get('build_seconds', '?')} s build. "
          f"Load average before / after: {meta.get('loadavg_start', '?')} / "
          f"{meta.get('loadavg_end', '?')}.")
if meta.get("busy"):
    md.append("")
    md.append(f"**Other work was running on the machine during the run** ({meta['busy']}): "
              "tail latencies (p99, p99.9) are the first figures it spoils.")
md.append("")
md.append(meta.get("setup_note", ""))
md.append("")
md.append("## Targets")
md.append("")
md.append("| target | measured | limit | verdict |")
md.append("| --- | --- | --- | --- |")
for t in targets:
    verdict = "not measured" if t["met"] is None else ("**met**" if t["met"] else "**missed**")
    md.append(f"| {t['name']} | {t['detail']} | {num(t['limit'])} | {verdict} |")
md.append("")
md.append("## Manager level")
md.append("")
md.append("`store_load` is `redis_store::load` alone (the GET, the version header, the sealed "
          "bytes handed back: the store's part of a manager load); `conn_get` is a bare GET of "
          "the same value through the same `redis::connection` (no store, no manager): the "
          "client's own floor; `socket_get` is the same GET on a blocking socket of its own, "
          "without Asio or websession (one coroutine only): the floor of any client timed end to end. "
          "The Redis targets use repeated rounds of `store_load` (each round in the "
          "targets table), not these cells. "
          "C = coroutines, T = io_context threads; latencies in microseconds. `ops ×` and `p50 ×` "
          "are the ratios to the baseline named in the last column (p50 only for one request at "
          "a time; a memory floor is the sum of the p50s of its parts, times T for its ops/s).")
spread1 = find(scenario="store_load", store="redis", cipher="aes_gcm", payload=1024, concurrency=1)
if spread1 and spread1["sessions"] > 1:
    md[-1] += (f" The Redis cell of one coroutine on 1 KB encrypted sessions takes "
               f"{spread1['sessions']} sessions in turn, as its Redis Cluster counterpart must to "
               "reach every master.")
md.append("")
md.append("| scenario | store | cipher | payload | C | T | ops/s | p50 | p90 | p99 | p99.9 | ops × | p50 × | baseline |")
md.append("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
for r in results:
    if r["level"] != "manager":
        continue
    err = f" ({r['errors']} errors)" if r["errors"] else ""
    md.append(f"| {r['scenario']}{err} | {r['store']} | {r['cipher']} | {r['payload']} | "
              f"{r['concurrency']} | {r['threads']} | {num(r['ops_per_s'])} | {num(r['p50_us'])} | "
              f"{num(r['p90_us'])} | {num(r['p99_us'])} | {num(r['p999_us'])} | {x(r['ops_ratio'])} | "
              f"{x(r['p50_ratio'])} | {r['baseline'] or '–'} |")
md.append("")
md.append("## Redis Cluster")
md.append("")
if cluster:
    md.append(f"The same 1 KB encrypted sessions on a Redis Cluster of {cluster_doc['masters']} "
              "masters (no replicas) on loopback, through `redis::client` over a `redis::cluster` "
              "(one connection per master, each request sent to the master of its key's hash "
              "slot). Sessions get random slot tags, so they spread over the masters (`per "
              "master`: the keys each master held after setup); one coroutine takes several "
              "sessions in turn, and the single-node cells it is compared with do the same. `ops ×` and "
              "`p50 ×` are the ratios to the single node's cell of the same scenario in the same "
              "run (p50 only for one coroutine). The routing target (above) is judged on the "
              "rounds, where each cluster cell runs right after the single node's.")
    md.append("")
    f64 = cluster_doc.get("store_load_c64")
    if f64:
        md.append(f"**64 coroutines, store_load, over the rounds:** {num(f64['ops_per_s'])} ops/s "
                  f"(p50 {num(f64['p50_us'])}, p90 {num(f64['p90_us'])}, p99 {num(f64['p99_us'])}, "
                  f"p99.9 {num(f64['p999_us'])} us: medians) = **{f64['ops_ratio']:.2f}x** the "
                  f"single node's {num(f64['single_ops_per_s'])} ops/s; {f64['detail']}. The "
                  "three masters share the one CPU the single node has to itself, and each "
                  "connection carries a third of the requests: this is what the split costs on "
                  "this machine, not what masters on hosts of their own would give.")
        md.append("")
    md.append("| scenario | C | sessions per C | ops/s | p50 | p90 | p99 | p99.9 | ops × | p50 × | per master |")
    md.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for r in results:
        if r["level"] != "cluster":
            continue
        err = f" ({r['errors']} errors)" if r["errors"] else ""
        md.append(f"| {r['scenario']}{err} | {r['concurrency']} | {r['sessions']} | "
                  f"{num(r['ops_per_s'])} | {num(r['p50_us'])} | {num(r['p90_us'])} | "
                  f"{num(r['p99_us'])} | {num(r['p999_us'])} | {x(r['ops_ratio'])} | "
                  f"{x(r['p50_ratio'])} | {'/'.join(str(n) for n in r['keys_per_master'] or [])} |")
else:
    md.append(f"Skipped: {meta.get('cluster_skipped') or 'no cluster results'}.")
md.append("")
if ioc_doc:
    md.append("## One manager on two io_contexts: one Redis client or one per io_context")
    md.append("")
    md.append("`bench_sessions --ioc-pool shared|own --threads 2 --concurrency 32`: manager "
              "`async_load` of 1 KB AES-GCM sessions from 2 io_contexts run by one thread each "
              "(32 coroutines on each), through one `redis::client` on io_context 0 (`shared`: the "
              "other io_context's requests hop to its thread and back) or a `redis_store` over one "
              "client per io_context (`own`), alternated. Client CPU is the process's CPU time per "
              "load. Median own / shared: ops/s "
              f"{ioc_doc['own_over_shared_ops_median']:.2f}x, p99 "
              f"{ioc_doc['own_over_shared_p99_median']:.2f}x.")
    md.append("")
    md.append("| rep | ops/s shared | ops/s own | p50 shared | p50 own | p99 shared | p99 own | "
              "CPU us/op shared | CPU us/op own |")
    md.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for pr in ioc_doc["pairs"]:
        md.append(f"| {pr['rep']} | {pr['shared_ops_per_s']:,.0f} | {pr['own_ops_per_s']:,.0f} | "
                  f"{pr['shared_p50_us']:.1f} | {pr['own_p50_us']:.1f} | {pr['shared_p99_us']:.1f} | "
                  f"{pr['own_p99_us']:.1f} | {num(pr['shared_cpu_us_per_op'])} | "
                  f"{num(pr['own_cpu_us_per_op'])} |")
    md.append("")
md.append("## HTTP level (wrk through example/server)")
md.append("")
if any(r["level"] == "http" for r in results):
    md.append("C = wrk connections, T = server threads (an io_context each). `/visits`: every "
              "connection sends the same session cookie (one hot session: every request loads and "
              "saves it, so concurrent requests contend for it: `conflicts` counts the version "
              "conflicts async_update retried); `(16 sessions)`: each wrk thread sends 16 session "
              "cookies in turn, so concurrent requests rarely share a session. `/healthz`: the "
              "memory store's server, no session (HTTP + routing + a store ping): the baseline of "
              "every store's `/visits` at the same T. Each cell ran several times (`reps`), the "
              "repetitions interleaved: figures are medians, with the spread (lowest-highest) "
              "of requests/s and p99; conflicts are the median per run.")
    md.append("")
    md.append("| endpoint | store | C | T | reps | requests/s (spread) | p50 | p90 | p99 (spread) | p99.9 | ops × | p50 × | conflicts | check |")
    md.append("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    rows = [h for h in http if h["endpoint"] == "/healthz"] + [r for r in results if r["level"] == "http"]
    for r in sorted(rows, key=lambda r: (r.get("endpoint", "/visits") != "/healthz", r["store"],
                                         -r.get("sessions", 1), r["threads"])):
        err = f" ({r['errors']} errors)" if r["errors"] else ""
        name = r["scenario"][5:] if "scenario" in r else r["endpoint"]
        conns = r.get("concurrency", r.get("connections"))
        md.append(f"| {name}{err} | {r['store']} | {conns} | {r['threads']} | {r.get('reps', 1)} | "
                  f"{num(r['ops_per_s'])} ({num(r['ops_per_s_min'])}-{num(r['ops_per_s_max'])}) | "
                  f"{num(r['p50_us'])} | {num(r['p90_us'])} | "
                  f"{num(r['p99_us'])} ({num(r['p99_us_min'])}-{num(r['p99_us_max'])}) | "
                  f"{num(r['p999_us'])} | {x(r.get('ops_ratio'))} | "
                  f"{x(r.get('p50_ratio'))} | {num(r['conflicts'], 0) if r.get('conflicts') is not None else '–'} | "
                  f"{r.get('session_check') or ''} |")
    if http_ratios:
        md.append("")
        md.append("Ratios of requests/s, per repetition (both sides in the same minute), median and spread:")
        md.append("")
        md.append("| ratio | median | spread | limit |")
        md.append("| --- | ---: | --- | ---: |")
        for q in http_ratios:
            md.append(f"| {q['name']} | {q['ratio']:.2f}x | {q['min']:.2f}-{q['max']:.2f}x | {q['limit']}x |")
else:
    md.append(f"Skipped: {meta.get('http_skipped', 'no HTTP results')}.")
if meta.get("http_notes"):
    md.append("")
    md.append(f"Not measured: {meta['http_notes']}.")
md.append("")
md.append("## Memory per stored session")
md.append("")
if memory_doc:
    md.append("Each line: one `bench_sessions --footprint` process storing N sessions through the "
              "manager's first save (the 1 KB payload of the other cells, AES-256-GCM), anonymous "
              "or each bound to a user of its own (which adds the per-user index). Memory store: "
              "growth of the process's resident set (/proc/self/statm) from just before the "
              "first of the N saves to just after the last, each reading taken after "
              "`malloc_trim(0)` so that freed heap glibc still caches (from the warm-up, or "
              "temporaries of the saves) is not counted as the store's, divided by N; `allocated` "
              "is the growth of the allocator's in-use bytes (mallinfo2: chunk sizes, so malloc's "
              "rounding is in), `accounted` what the store charges against max_bytes. Redis: "
              "growth of INFO `used_memory` of the benchmark's redis-server (flushed first) over "
              "the same N sessions stored through `redis_store`; the value there is the sealed "
              "session behind a 4-byte version header. `overhead` = per session - sealed bytes: "
              "key, metadata, hash-table nodes and buckets, indexes, allocator rounding.")
    md.append("")
    md.append("| store | sessions | users | serialized | sealed | key | per session | overhead | details |")
    md.append("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for e in memory_doc:
        if e["store"] == "memory":
            det = (f"resident {e['resident_per_session']:.0f} B (untrimmed "
                   f"{e['resident_untrimmed_per_session']:.0f} B), allocated "
                   f"{e['allocated_per_session']:.0f} B, accounted {e['accounted_per_session']:.0f} B")
        else:
            det = (f"used_memory {e['used_memory_before']:,} -> {e['used_memory_after']:,} B, "
                   f"{e['keys_after']:,} keys")
        users = f"bound (index name {e['user_index_bytes']} B)" if e["bound"] else "anonymous"
        md.append(f"| {e['store']} | {e['stored']:,} | {users} | {e['plain_bytes']} | "
                  f"{e['stored_bytes']} | {e['key_bytes']} | **{e['per_session']:.0f}** | "
                  f"{e['overhead_per_session']:.0f} | {det} |")
else:
    md.append("Not measured.")
md.append("")
md.append("## Baselines (same run)")
md.append("")
md.append("redis-benchmark's histogram has buckets 8 us wide below 16 ms (its lowest discernible "
          "value is 10 us) and reports their upper edge, so a p50 of 31 us means 24-31 us: the "
          "rounding is 15-25% of a loopback round trip of 30-50 us, more than the whole margin of "
          "a 1.15x target (the 1-coroutine target therefore also gives the store against "
          "`socket_get` in the same rounds); its mean uses bucket midpoints, so it is not biased "
          "upwards. It also starts its clock before the write and stops it when the reply "
          "becomes readable, before the reply is read and parsed; `conn_get`, `store_load` and "
          "`socket_get` above are timed end to end (request built, sent, reply read and parsed), "
          "every sample kept.")
md.append("")
md.append("| baseline | payload | value bytes | ops/s | p50 | p99 | mean |")
md.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
for b in baselines:
    md.append(f"| {b['name']} | {b['payload']} | {b.get('value_bytes', '–')} | {num(b['ops_per_s'])} | "
              f"{num(b['p50_us'], 2)} | {num(b['p99_us'], 2)} | {num(b.get('avg_us'), 1)} |")
md.append("")
md.append("![latency percentiles](latency.png)")
md.append("")
with open(os.path.join(out, "latest.md"), "w") as f:
    f.write("\n".join(md))

# ---------------------------------------------------------------------------------------------
# Plot data: per store, the percentiles of each scenario of the 1 KB encrypted cell (one request
# at a time), and the baseline's p50 / p99 where known.
pcts = [("p50", "p50_us", 50), ("p90", "p90_us", 90), ("p99", "p99_us", 99), ("p99.9", "p999_us", 99.9)]
scen = ["create", "load", "load_save", "rotate", "destroy"]
for store in ("memory", "redis"):
    for conc in (1, 64):
        cells = {r["scenario"]: r for r in results if r["level"] == "manager" and r["store"] == store
                 and r["cipher"] == "aes_gcm" and r["payload"] == 1024 and r["concurrency"] == conc
                 and r["threads"] == 1}
        with open(os.path.join(raw, f"plot_{store}_c{conc}.dat"), "w") as f:
            f.write("# x label " + " ".join(scen) + "\n")
            for i, (label, key, _) in enumerate(pcts):
                vals = [f"{cells[s][key]:.3f}" if s in cells else "NaN" for s in scen]
                f.write(f"{i} {label} " + " ".join(vals) + "\n")
    # Baseline points: redis-benchmark GET -c 1 (p50, p99) or the memory load floor (p50 only).
    with open(os.path.join(raw, f"plot_{store}_base.dat"), "w") as f:
        if store == "redis":
            for conc, c in ((1, "-c 1"), (64, "-c 50")):
                g = rb.get((1024, f"GET {c}"))
                if g:
                    f.write(f"# GET {c}\n0 {g['p50_us']:.3f}\n2 {g['p99_us']:.3f}\n\n\n")
                else:
                    f.write(f"# GET {c}\n0 NaN\n\n\n")
        else:
            r = find(scenario="load", store="memory", cipher="aes_gcm", payload=1024, concurrency=1,
                     threads=1)
            fl = floor_for(r) if r else None
            f.write(f"# floor\n0 {fl['p50_us'] if fl else 'NaN'}\n\n\n# none\n0 NaN\n\n\n")

met = sum(1 for t in targets if t["met"])
missed = sum(1 for t in targets if t["met"] is False)
print(f"report: {len(results)} results, {len(baselines)} baselines; targets met {met}, "
      f"missed {missed}, not measured {len(targets) - met - missed}")
