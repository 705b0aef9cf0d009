#!/usr/bin/python3
"""handoff against Redis Streams, side by side, in one sitting.

Runs handoff-bench and handoff-redis-bench on the same workload (1 KiB payloads by default),
interleaved: round 1 of every command, then round 2, and so on, because this kind of machine
drifts by a third within an hour. Prints the median of each command over the rounds, the
ratios the performance targets are stated in (docs/performance.md), and whether each is met.

    /usr/bin/python3 tests/bench/compare_redis.py --bin build/daemons [--rounds 3]
        [--count 20000] [--latency-count 3000] [--payload 1024] [--json FILE]

Exit status: 0 when every run completed with every result right (whether or not a target is
met: these are figures, not assertions), 1 when a run failed, 2 on bad arguments.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys


def commands(args):
    """(name, argv) of every run of one round."""
    hb = os.path.join(args.bin, "handoff-bench")
    rb = os.path.join(args.bin, "handoff-redis-bench")
    n, lat, p = str(args.count), str(args.latency_count), str(args.payload)
    common = ["--payload", p, "--json"]
    return [
        ("handoff_1node", [hb, "--count", n] + common),
        ("redis_always", [rb, "--count", n, "--appendfsync", "always"] + common),
        ("handoff_2nodes", [hb, "--nodes", "2", "--count", n] + common),
        ("handoff_1node_nofsync", [hb, "--no-fsync", "--count", n] + common),
        ("handoff_2nodes_nofsync", [hb, "--nodes", "2", "--no-fsync", "--count", n] + common),
        ("redis_no", [rb, "--count", n, "--appendfsync", "no"] + common),
        ("handoff_1node_w1", [hb, "--window", "1", "--count", lat] + common),
        ("redis_always_w1", [rb, "--window", "1", "--count", lat, "--appendfsync", "always"] + common),
        ("handoff_2nodes_w1", [hb, "--nodes", "2", "--window", "1", "--count", lat] + common),
        # References, not targets: Redis reached over a Unix socket, as handoff's agents reach
        # their daemon (its stream socket), where the targets are stated against loopback TCP.
        ("redis_always_unix", [rb, "--count", n, "--appendfsync", "always", "--unix-socket"] + common),
        ("redis_always_unix_w1", [rb, "--window", "1", "--count", lat, "--appendfsync", "always",
                                  "--unix-socket"] + common),
    ]


# (what, numerator run and field, denominator run and field, the target, "min" or "max")
TARGETS = [
    ("one node, 256 in flight, fsync: round trips/s vs Redis always",
     ("handoff_1node", "round_trips_per_s"), ("redis_always", "round_trips_per_s"), 1.8, "min"),
    ("two nodes, 256 in flight, fsync: round trips/s vs Redis always",
     ("handoff_2nodes", "round_trips_per_s"), ("redis_always", "round_trips_per_s"), 1.0, "min"),
    ("one node, no fsync: round trips/s vs Redis appendfsync no",
     ("handoff_1node_nofsync", "round_trips_per_s"), ("redis_no", "round_trips_per_s"), 1.0, "min"),
    ("one node, 1 in flight: p50 vs Redis always",
     ("handoff_1node_w1", "p50_us"), ("redis_always_w1", "p50_us"), 1.0, "max"),
    ("two nodes, 1 in flight: p50 in ms (absolute)",
     ("handoff_2nodes_w1", "p50_us"), None, 2.0, "max"),
]


# The same comparisons against Redis over a Unix socket: printed beside the targets, not
# counted as them. (what, numerator, denominator, the target's figure, "min" or "max")
REFERENCES = [
    ("one node, 256 in flight, fsync: round trips/s vs Redis always over a Unix socket",
     ("handoff_1node", "round_trips_per_s"), ("redis_always_unix", "round_trips_per_s"), 1.8, "min"),
    ("two nodes, 256 in flight, fsync: round trips/s vs Redis always over a Unix socket",
     ("handoff_2nodes", "round_trips_per_s"), ("redis_always_unix", "round_trips_per_s"), 1.0, "min"),
    ("one node, 1 in flight: p50 vs Redis always over a Unix socket",
     ("handoff_1node_w1", "p50_us"), ("redis_always_unix_w1", "p50_us"), 1.0, "max"),
]


def ratios(median, table):
    """Each comparison of `table` whose runs are there: (what, ratio, target, kind, met, short)."""
    out = []
    for what, num, den, target, kind in table:
        if num[0] not in median or (den is not None and den[0] not in median):
            continue
        value = median[num[0]][num[1]]
        if den is None:
            ratio = value / 1000.0  # p50 in ms
        else:
            ratio = value / median[den[0]][den[1]] if median[den[0]][den[1]] else float("inf")
        met = ratio >= target if kind == "min" else ratio <= target
        out.append((what, ratio, target, kind, met, missed_by(ratio, target, kind)))
    return out


# The runs at 256 in flight whose CPU explains a throughput target: (run, the Redis run and the
# ratio its target wants).
BUDGETS = [
    ("handoff_1node", "redis_always", 1.8),
    ("handoff_2nodes", "redis_always", 1.0),
    ("handoff_1node_nofsync", "redis_no", 1.0),
    ("handoff_2nodes_nofsync", "redis_always", 1.0),
]


# The ceiling of each throughput target with fsync: the same run without fsync, where a flush
# costs nothing and only the work and the threads' hand-overs are left. (run with fsync, the run
# without, the Redis run and the ratio the target wants.) A ceiling below the target says the
# flushes alone cannot be what misses it.
CEILINGS = [
    ("handoff_1node", "handoff_1node_nofsync", "redis_always", 1.8),
    ("handoff_2nodes", "handoff_2nodes_nofsync", "redis_always", 1.0),
]


def median_round(rounds, field):
    """The round whose `field` is the median (the lower of the middle two for an even count)."""
    ordered = sorted(rounds, key=lambda r: r[field])
    return ordered[(len(ordered) - 1) // 2]


def missed_by(ratio, target, kind):
    """How far `ratio` falls short of `target`, as a fraction of the target (0 when met)."""
    if kind == "min":
        return max(0.0, (target - ratio) / target)
    return max(0.0, (ratio - target) / target)


def cpu_line(name, run):
    """The CPU one handoff-bench run spent per round trip, by daemon and thread, and in all."""
    parts, total = [], 0.0
    for daemon, d in sorted(run.get("daemons", {}).items()):
        threads = ", ".join("%s %.1f" % (t, us) for t, us in sorted(d.get("cpu_us_by_thread", {}).items())
                            if us > 0)
        parts.append("%s %.1f (%s)" % (daemon, d["cpu_us_per_round_trip"], threads))
        total += d["cpu_us_per_round_trip"]
    bench = run.get("bench_cpu_us_per_round_trip", 0.0)
    total += bench
    return "%-22s %s + agents %.1f = %.1f us" % (name, " + ".join(parts), bench, total), total


def report(runs, rounds, payload, count, latency_count, cores):
    """The medians, the targets (met, or missed and by how much) and, for each throughput
    target, where the CPU went against what the cores allow at the wanted rate: the text to
    print and the summary for --json."""
    out = []
    median = {name: {f: statistics.median(x[f] for x in rs) for f in ("round_trips_per_s", "p50_us", "p99_us")}
              for name, rs in runs.items() if rs}
    out.append("\nmedians of %d interleaved rounds (payload %d bytes; %d round trips at 256 in flight, %d at 1)"
               % (rounds, payload, count, latency_count))
    out.append("%-24s %14s %10s %10s" % ("run", "round trips/s", "p50 ms", "p99 ms"))
    for name, m in median.items():
        out.append("%-24s %14.0f %10.3f %10.3f" % (name, m["round_trips_per_s"], m["p50_us"] / 1000.0,
                                                   m["p99_us"] / 1000.0))
    out.append("")
    summary = []
    for what, ratio, target, kind, met, short in ratios(median, TARGETS):
        summary.append({"target": what, "value": round(ratio, 3),
                        "wanted": ("at least " if kind == "min" else "at most ") + str(target),
                        "met": met, "missed_by": round(short, 3)})
        out.append("%-66s %7.2f  (%s %.1f: %s)" % (
            what, ratio, "want >=" if kind == "min" else "want <=", target,
            "met" if met else "MISSED by %.0f%%" % (100 * short)))
    references = []
    reference_lines = []
    for what, ratio, target, kind, met, short in ratios(median, REFERENCES):
        references.append({"reference": what, "value": round(ratio, 3), "target_figure": target,
                           "would_meet": met})
        reference_lines.append("%-82s %7.2f  (the target's %.1f: %s)" % (
            what, ratio, target, "would be met" if met else "short by %.0f%%" % (100 * short)))
    if reference_lines:
        out.append("")
        out.append("References, not targets (Redis over a Unix socket, as handoff's agents reach "
                   "their daemon):")
        out.extend(reference_lines)
    cpu = {}
    lines = []
    for name, redis, target in BUDGETS:
        if name not in runs or redis not in median or not runs[name]:
            continue
        run = median_round(runs[name], "round_trips_per_s")
        line, used = cpu_line(name, run)
        wanted_rate = target * median[redis]["round_trips_per_s"]
        allowed = cores * 1e6 / wanted_rate if wanted_rate else float("inf")
        busy = used * run["round_trips_per_s"] / 1e6
        cpu[name] = {"used_us_per_round_trip": round(used, 2),
                     "allowed_us_per_round_trip": round(allowed, 2),
                     "cores_busy": round(busy, 2), "cores": cores}
        lines.append(line)
        lines.append("%-22s at %.1f x %s (%.0f/s) %d cores allow %.1f us; at %.0f/s it kept %.2f of %d "
                     "cores busy" % ("", target, redis, wanted_rate, cores, allowed,
                                     run["round_trips_per_s"], busy, cores))
    ceilings = {}
    ceiling_lines = []
    for synced, unsynced, redis, target in CEILINGS:
        if synced not in median or unsynced not in median or redis not in median:
            continue
        rate = median[unsynced]["round_trips_per_s"]
        redis_rate = median[redis]["round_trips_per_s"]
        ratio = rate / redis_rate if redis_rate else float("inf")
        ceilings[synced] = {"without_fsync": unsynced, "round_trips_per_s": rate,
                            "ratio": round(ratio, 3), "wanted": target}
        ceiling_lines.append("%-22s %8.0f/s with fsync, %8.0f/s without: %.2f x %s without fsync "
                             "(the target wants %.1f with it)" % (
                                 synced, median[synced]["round_trips_per_s"], rate, ratio, redis,
                                 target))
    if ceiling_lines:
        out.append("")
        out.append("The ceiling without fsync (flushes free; what is left is the work and the "
                   "threads' hand-overs):")
        out.extend(ceiling_lines)
    if lines:
        out.append("")
        out.append("CPU per round trip of every thread (the median round of each run at 256 in flight):")
        out.extend(lines)
        out.append("(more CPU than allowed: the work per round trip bounds it; less, with cores idle: "
                   "threads wait on each other and on flushes; docs/performance.md)")
    return "\n".join(out) + "\n", {"medians": median, "targets": summary, "cpu": cpu,
                                   "ceilings": ceilings, "references": references}


def run(argv):
    out = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=900)
    if out.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(argv), out.returncode, out.stderr.strip()[-500:]))
    return json.loads(out.stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", required=True, help="directory with handoff-bench and handoff-redis-bench")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--count", type=int, default=20000, help="round trips of the 256-in-flight runs")
    ap.add_argument("--latency-count", type=int, default=3000, help="round trips of the 1-in-flight runs")
    ap.add_argument("--payload", type=int, default=1024)
    ap.add_argument("--json", help="write every run and the summary here")
    args = ap.parse_args()
    for tool in ("handoff-bench", "handoff-redis-bench"):
        if not os.access(os.path.join(args.bin, tool), os.X_OK):
            print("compare_redis: %s not found in %s (handoff-redis-bench is built where hiredis is "
                  "installed: make bench-deps, then rebuild)" % (tool, args.bin), file=sys.stderr)
            return 2
    if shutil.which("redis-server") is None:
        print("compare_redis: redis-server is not installed (make bench-deps)", file=sys.stderr)
        return 2

    runs = {name: [] for name, _ in commands(args)}
    for r in range(args.rounds):
        for name, argv in commands(args):
            try:
                result = run(argv)
            except (RuntimeError, subprocess.TimeoutExpired, json.JSONDecodeError) as e:
                print("compare_redis: %s" % e, file=sys.stderr)
                return 1
            runs[name].append(result)
            print("round %d/%d %-22s %8d round trips/s  p50 %.3f ms" % (
                r + 1, args.rounds, name, result["round_trips_per_s"], result["p50_us"] / 1000.0),
                file=sys.stderr, flush=True)

    text, result = report(runs, args.rounds, args.payload, args.count, args.latency_count,
                          os.cpu_count() or 1)
    print(text, end="")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(result, runs=runs, rounds=args.rounds), f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
