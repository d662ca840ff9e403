#!/usr/bin/env python3
# SPDX-License-Identifier: BSL-1.0
"""The soak test's sampler and report (scripts/soak.sh runs both).

  soak.py sample --pid PID --url URL [--redis-port P] --out FILE
      Once a second until SIGTERM (or until PID is gone): the server's resident memory
      (VmRSS of /proc/PID/status), its open descriptors (entries of /proc/PID/fd), its session
      counters (/healthz "stats") and, with --redis-port, the keys and used_memory of that
      redis-server. One JSON object per line.

  soak.py report --raw DIR --json OUT.json --tsv-dir DIR --run S --warmup S --window S
      Reads DIR/STORE.samples.jsonl, DIR/STORE.wrk_pool.json, DIR/STORE.wrk_new.json and
      DIR/meta.json for each store in meta.json's "stores", judges growth after the warm-up,
      writes OUT.json and one STORE.tsv per store for the plot; exit status 1 if a store grew
      beyond the tolerance (or its run failed).

Tolerance (after the warm-up; "first window" is the first WINDOW seconds after it, "last
window" the run's last WINDOW seconds):
  RSS: median of the last window <= median of the first window + max(10 %, 8 MiB)
  descriptors: max of the last window <= max of the first window + 4
"""
import argparse
import json
import os
import signal
import socket
import statistics
import sys
import time
import urllib.request

RSS_REL = 0.10
RSS_ABS_KIB = 8 * 1024
FD_ABS = 4


# ------------------------------------------------------------------------------------------
# Sampler

def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "Threads"):
                out[key] = int(value.split()[0])
    return out


class Redis:
    """A minimal RESP client for DBSIZE and INFO memory (one connection, reconnects)."""

    def __init__(self, port):
        self.port = port
        self.sock = None
        self.buf = b""

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise OSError("redis closed the connection")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def _reply(self):
        line = self._line()
        if line[:1] == b":":
            return int(line[1:])
        if line[:1] == b"$":
            n = int(line[1:])
            while len(self.buf) < n + 2:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise OSError("redis closed the connection")
                self.buf += chunk
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            return data.decode()
        raise OSError(f"unexpected reply {line[:80]!r}")

    def command(self, *args):
        if self.sock is None:
            self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=2)
            self.buf = b""
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a.encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        try:
            self.sock.sendall(out)
            return self._reply()
        except (OSError, ValueError):
            self.sock.close()
            self.sock = None
            raise

    def sample(self):
        keys = self.command("DBSIZE")
        info = self.command("INFO", "memory")
        used = next((int(l.split(":")[1]) for l in info.splitlines()
                     if l.startswith("used_memory:")), None)
        return keys, used


def sample(args):
    stop = False

    def on_term(*_):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    redis = Redis(args.redis_port) if args.redis_port else None
    t0 = time.monotonic()
    k = 0
    with open(args.out, "a") as out:
        while not stop:
            row = {"t": round(time.monotonic() - t0, 3)}
            try:
                st = proc_status(args.pid)
                row["rss_kib"] = st.get("VmRSS")
                row["hwm_kib"] = st.get("VmHWM")
                row["threads"] = st.get("Threads")
                # Before /healthz, whose own connection would be counted.
                row["fds"] = len(os.listdir(f"/proc/{args.pid}/fd"))
            except (FileNotFoundError, ProcessLookupError):
                row["gone"] = True
                out.write(json.dumps(row) + "\n")
                break
            try:
                with urllib.request.urlopen(args.url + "/healthz", timeout=2) as r:
                    body = json.loads(r.read())
                row["stats"] = body.get("stats")
                row["degraded"] = body.get("degraded")
            except Exception as e:  # a slow or failed /healthz is a gap, not the end
                row["healthz_error"] = str(e)[:120]
            if redis:
                try:
                    row["redis_keys"], row["redis_used_memory"] = redis.sample()
                except (OSError, ValueError) as e:
                    row["redis_error"] = str(e)[:120]
            out.write(json.dumps(row) + "\n")
            out.flush()
            k += 1
            delay = t0 + k - time.monotonic()
            while delay > 0 and not stop:
                time.sleep(min(delay, 0.2))
                delay = t0 + k - time.monotonic()


# ------------------------------------------------------------------------------------------
# Report

def load_jsonl(path):
    rows = []
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line:
                    rows.append(json.loads(line))
    return rows


def rates(rows, key):
    """Per-sample rate of a /healthz counter (None where either side is missing)."""
    out, prev = [], None
    for r in rows:
        cur = (r["t"], r["stats"][key]) if r.get("stats") else None
        if cur and prev and cur[0] > prev[0]:
            out.append(round((cur[1] - prev[1]) / (cur[0] - prev[0]), 1))
        else:
            out.append(None)
        if cur:
            prev = cur
    return out


def judge(store, rows, wrk, run, warmup, window):
    res = {"store": store, "failures": []}
    live = [r for r in rows if not r.get("gone") and r.get("rss_kib") is not None]
    # The sampler is stopped before the server: a "gone" row means that the server died.
    if any(r.get("gone") for r in rows):
        res["failures"].append("the server exited during the run")
    for kind in ("pool", "new"):
        if not wrk.get(kind, {}).get("requests"):
            res["failures"].append(f"wrk ({kind}) completed no requests")
    first = [r for r in live if warmup <= r["t"] < warmup + window]
    last = [r for r in live if run - window <= r["t"] <= run]
    if len(first) < window / 2 or len(last) < window / 2:
        res["failures"].append(f"too few samples to judge ({len(first)} and {len(last)})")
    if live:
        res["rss_start_mib"] = round(live[0]["rss_kib"] / 1024, 1)
        res["rss_end_mib"] = round(live[-1]["rss_kib"] / 1024, 1)
        res["rss_max_mib"] = round(max(r["rss_kib"] for r in live) / 1024, 1)
        res["fds_start"] = live[0]["fds"]
        res["fds_end"] = live[-1]["fds"]
        res["fds_min"] = min(r["fds"] for r in live)
        res["fds_max"] = max(r["fds"] for r in live)
    if first and last:
        m0 = statistics.median(r["rss_kib"] for r in first)
        m1 = statistics.median(r["rss_kib"] for r in last)
        allowed = max(RSS_REL * m0, RSS_ABS_KIB)
        res["rss_first_window_median_mib"] = round(m0 / 1024, 2)
        res["rss_last_window_median_mib"] = round(m1 / 1024, 2)
        res["rss_growth_mib"] = round((m1 - m0) / 1024, 2)
        res["rss_growth_pct"] = round(100 * (m1 - m0) / m0, 1)
        res["rss_allowed_growth_mib"] = round(allowed / 1024, 2)
        res["rss_ok"] = m1 - m0 <= allowed
        if not res["rss_ok"]:
            res["failures"].append(f"RSS grew {res['rss_growth_mib']} MiB "
                                   f"(allowed {res['rss_allowed_growth_mib']} MiB)")
        f0 = max(r["fds"] for r in first)
        f1 = max(r["fds"] for r in last)
        res["fds_first_window_max"] = f0
        res["fds_last_window_max"] = f1
        res["fds_ok"] = f1 <= f0 + FD_ABS
        if not res["fds_ok"]:
            res["failures"].append(f"descriptors grew from {f0} to {f1} (allowed +{FD_ABS})")
    with_stats = [r for r in live if r.get("stats")]
    if len(with_stats) >= 2:
        a, b = with_stats[0]["stats"], with_stats[-1]["stats"]
        span = with_stats[-1]["t"] - with_stats[0]["t"]
        res["sessions_created"] = b["created"] - a["created"]
        res["sessions_created_per_s"] = round((b["created"] - a["created"]) / span, 1)
        res["saves_per_s"] = round((b["saved"] - a["saved"]) / span, 1)
        res["store_errors"] = b["store_errors"] - a["store_errors"]
        res["conflicts"] = b["conflicts"] - a["conflicts"]
        res["expired_loads"] = b["expired"] - a["expired"]
    keys = [r["redis_keys"] for r in live if "redis_keys" in r]
    if keys:
        post = [r["redis_keys"] for r in live if r["t"] >= warmup and "redis_keys" in r]
        res["redis_keys_end"] = keys[-1]
        res["redis_keys_post_warmup_min_max"] = [min(post), max(post)] if post else None
    if wrk:
        res["wrk"] = wrk
    res["ok"] = not res["failures"]
    return res


def report(args):
    meta = json.load(open(os.path.join(args.raw, "meta.json")))
    stores = meta["stores"]
    out = {
        "date": meta.get("date"),
        "commit": meta.get("commit"),
        "note": meta.get("note"),
        "setup": meta.get("setup"),
        "run_seconds_per_store": args.run,
        "warmup_seconds": args.warmup,
        "window_seconds": args.window,
        "tolerance": (f"after a warm-up of {args.warmup:g} s: RSS median of the last {args.window:g} s "
                      f"<= median of the first {args.window:g} s after the warm-up + max({RSS_REL:.0%}, "
                      f"{RSS_ABS_KIB // 1024} MiB); open descriptors: max of the last "
                      f"{args.window:g} s <= max of the first {args.window:g} s after the warm-up "
                      f"+ {FD_ABS}"),
        "summary": {},
        "samples": {},
    }
    ok = True
    for store in stores:
        rows = load_jsonl(os.path.join(args.raw, f"{store}.samples.jsonl"))
        wrk = {}
        for kind in ("pool", "new"):
            path = os.path.join(args.raw, f"{store}.wrk_{kind}.json")
            if os.path.exists(path):
                wrk[kind] = json.load(open(path))
        res = judge(store, rows, wrk, args.run, args.warmup, args.window)
        ok = ok and res["ok"]
        out["summary"][store] = res
        live = [r for r in rows if r.get("rss_kib") is not None]
        saves, created = rates(live, "saved"), rates(live, "created")
        cols = {
            "t_s": [r["t"] for r in live],
            "rss_kib": [r["rss_kib"] for r in live],
            "fds": [r["fds"] for r in live],
            "threads": [r.get("threads") for r in live],
            "saves_per_s": saves,
            "created_per_s": created,
        }
        if any("redis_keys" in r for r in live):
            cols["redis_keys"] = [r.get("redis_keys") for r in live]
            cols["redis_used_memory"] = [r.get("redis_used_memory") for r in live]
        out["samples"][store] = cols
        with open(os.path.join(args.tsv_dir, f"{store}.tsv"), "w") as f:
            f.write("# t_s rss_mib fds saves_per_s created_per_s\n")
            for i, r in enumerate(live):
                f.write("%.1f %.2f %d %s %s\n" % (
                    r["t"], r["rss_kib"] / 1024, r["fds"],
                    "NaN" if saves[i] is None else saves[i],
                    "NaN" if created[i] is None else created[i]))
    out["ok"] = ok
    with open(args.json, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    for store, res in out["summary"].items():
        w = res.get("wrk", {}).get("pool", {})
        n = res.get("wrk", {}).get("new", {})
        print(f"{store}: RSS {res.get('rss_start_mib')} -> {res.get('rss_end_mib')} MiB "
              f"(window medians {res.get('rss_first_window_median_mib')} -> "
              f"{res.get('rss_last_window_median_mib')}, allowed +{res.get('rss_allowed_growth_mib')}); "
              f"fds {res.get('fds_first_window_max')} -> {res.get('fds_last_window_max')} "
              f"(range {res.get('fds_min')}..{res.get('fds_max')}); "
              f"pool {w.get('ops_per_s', 0):.0f} req/s ({w.get('errors', 0)} errors, "
              f"{w.get('non_2xx', 0)} non-2xx), new visitors {n.get('ops_per_s', 0):.0f} req/s "
              f"({n.get('errors', 0)} errors, {n.get('non_2xx', 0)} non-2xx); {'ok' if res['ok'] else 'FAILED: ' + '; '.join(res['failures'])}")
    return 0 if ok else 1


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sample")
    s.add_argument("--pid", type=int, required=True)
    s.add_argument("--url", required=True)
    s.add_argument("--redis-port", type=int)
    s.add_argument("--out", required=True)
    r = sub.add_parser("report")
    r.add_argument("--raw", required=True)
    r.add_argument("--json", required=True)
    r.add_argument("--tsv-dir", required=True)
    r.add_argument("--run", type=float, required=True)
    r.add_argument("--warmup", type=float, required=True)
    r.add_argument("--window", type=float, required=True)
    a = p.parse_args()
    if a.cmd == "sample":
        sample(a)
        return 0
    return report(a)


if __name__ == "__main__":
    sys.exit(main())
