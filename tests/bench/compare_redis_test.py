"""compare_redis.py's report: ratios, how far a missed target falls short, and the CPU that
explains it, from handoff-bench and handoff-redis-bench JSON (synthetic here: the script's
runs need Redis, which `make test` does not install)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import compare_redis  # noqa: E402


def handoff_run(rate, p50_us, nodes=("node-a",), loop=20.0, committer=8.0, io=3.0, agents=8.0):
    daemons = {
        name: {"cpu_us_per_round_trip": loop + committer + io,
               "cpu_us_by_thread": {"loop": loop, "committer": committer, "zmq_io": io, "other": 0.0}}
        for name in nodes
    }
    return {"round_trips_per_s": rate, "p50_us": p50_us, "p99_us": 2 * p50_us,
            "bench_cpu_us_per_round_trip": agents, "daemons": daemons}


def redis_run(rate, p50_us):
    return {"round_trips_per_s": rate, "p50_us": p50_us, "p99_us": 2 * p50_us,
            "bench_cpu_us_per_round_trip": 5.0}


def runs_of(one_node_rates):
    """Three rounds of every command; one node's rates as given, the rest fixed."""
    return {
        "handoff_1node": [handoff_run(r, 7000) for r in one_node_rates],
        "redis_always": [redis_run(20000, 6000)] * 3,
        "handoff_2nodes": [handoff_run(12000, 18000, nodes=("node-a", "node-b"))] * 3,
        "handoff_1node_nofsync": [handoff_run(50000, 5000)] * 3,
        "handoff_2nodes_nofsync": [handoff_run(18000, 14000, nodes=("node-a", "node-b"))] * 3,
        "redis_no": [redis_run(40000, 4000)] * 3,
        "handoff_1node_w1": [handoff_run(900, 900)] * 3,
        "redis_always_w1": [redis_run(1000, 1000)] * 3,
        "handoff_2nodes_w1": [handoff_run(400, 2500, nodes=("node-a", "node-b"))] * 3,
        "redis_always_unix": [redis_run(24000, 5000)] * 3,
        "redis_always_unix_w1": [redis_run(1200, 800)] * 3,
    }


def test_the_median_round_is_the_middle_one_and_the_lower_middle_of_an_even_count():
    rounds = [{"x": 3}, {"x": 1}, {"x": 2}]
    assert compare_redis.median_round(rounds, "x") == {"x": 2}
    assert compare_redis.median_round(rounds + [{"x": 4}], "x") == {"x": 2}


def test_missed_by_is_the_shortfall_as_a_fraction_of_the_target_and_zero_when_met():
    assert compare_redis.missed_by(0.6, 1.0, "min") == 0.4
    assert compare_redis.missed_by(1.2, 1.0, "min") == 0.0
    assert abs(compare_redis.missed_by(2.7, 2.0, "max") - 0.35) < 1e-9
    assert compare_redis.missed_by(0.9, 1.0, "max") == 0.0


def test_the_report_says_which_targets_are_met_and_by_how_much_the_others_are_missed():
    text, result = compare_redis.report(runs_of([30000, 40000, 36000]), 3, 1024, 40000, 3000, 2)
    targets = {t["target"]: t for t in result["targets"]}
    assert len(targets) == len(compare_redis.TARGETS)
    one = targets["one node, 256 in flight, fsync: round trips/s vs Redis always"]
    assert one["value"] == 1.8 and one["met"] and one["missed_by"] == 0.0  # median 36,000 / 20,000
    two = targets["two nodes, 256 in flight, fsync: round trips/s vs Redis always"]
    assert two["value"] == 0.6 and not two["met"] and two["missed_by"] == 0.4
    nofsync = targets["one node, no fsync: round trips/s vs Redis appendfsync no"]
    assert nofsync["value"] == 1.25 and nofsync["met"]
    latency = targets["two nodes, 1 in flight: p50 in ms (absolute)"]
    assert latency["value"] == 2.5 and not latency["met"] and latency["missed_by"] == 0.25
    assert "MISSED by 40%" in text and "MISSED by 25%" in text
    assert "(want >= 1.8: met)" in text


def test_the_report_sets_each_runs_cpu_against_what_the_cores_allow_at_the_wanted_rate():
    text, result = compare_redis.report(runs_of([30000, 40000, 36000]), 3, 1024, 40000, 3000, 2)
    two = result["cpu"]["handoff_2nodes"]
    # Two daemons at 31 us each and 8 us of agents; at 1.0 x 20,000/s two cores allow 100 us.
    assert two["used_us_per_round_trip"] == 70.0
    assert two["allowed_us_per_round_trip"] == 100.0
    assert two["cores_busy"] == 0.84  # 70 us x 12,000/s
    one = result["cpu"]["handoff_1node"]
    # The median round (36,000/s), whose CPU is reported, against 1.8 x 20,000/s.
    assert one["used_us_per_round_trip"] == 39.0
    assert abs(one["allowed_us_per_round_trip"] - 2e6 / 36000) < 0.01
    assert one["cores_busy"] == 1.4
    assert "node-a 31.0 (committer 8.0, loop 20.0, zmq_io 3.0) + node-b 31.0" in text
    assert "handoff_1node_nofsync" in result["cpu"] and "redis_no" in text


def test_a_report_without_some_runs_leaves_their_targets_out():
    runs = runs_of([30000, 30000, 30000])
    del runs["handoff_2nodes"]
    text, result = compare_redis.report(runs, 3, 1024, 40000, 3000, 2)
    assert all("two nodes, 256" not in t["target"] for t in result["targets"])
    assert "handoff_2nodes" not in result["cpu"]
    assert "handoff_1node" in result["cpu"]


def test_the_report_gives_each_fsync_target_its_ceiling_without_fsync():
    text, result = compare_redis.report(runs_of([30000, 40000, 36000]), 3, 1024, 40000, 3000, 2)
    two = result["ceilings"]["handoff_2nodes"]
    # Two nodes without fsync at 18,000/s against Redis always at 20,000/s: below the 1.0 the
    # target wants with fsync, so the flushes alone are not what misses it.
    assert two["without_fsync"] == "handoff_2nodes_nofsync"
    assert two["ratio"] == 0.9 and two["wanted"] == 1.0
    one = result["ceilings"]["handoff_1node"]
    assert one["ratio"] == 2.5 and one["wanted"] == 1.8  # 50,000 / 20,000
    assert "handoff_2nodes            12000/s with fsync,    18000/s without: 0.90 x redis_always" in text
    assert "handoff_2nodes_nofsync" in result["cpu"]


def test_a_report_without_the_runs_without_fsync_gives_no_ceilings():
    runs = runs_of([30000, 30000, 30000])
    del runs["handoff_2nodes_nofsync"]
    del runs["handoff_1node_nofsync"]
    text, result = compare_redis.report(runs, 3, 1024, 40000, 3000, 2)
    assert result["ceilings"] == {}
    assert "ceiling" not in text


def test_redis_over_a_unix_socket_is_a_reference_beside_the_targets_not_one_of_them():
    text, result = compare_redis.report(runs_of([30000, 40000, 36000]), 3, 1024, 40000, 3000, 2)
    assert len(result["targets"]) == len(compare_redis.TARGETS)
    refs = {r["reference"]: r for r in result["references"]}
    one = refs["one node, 256 in flight, fsync: round trips/s vs Redis always over a Unix socket"]
    assert one["value"] == 1.5 and not one["would_meet"]  # 36,000 / 24,000 against 1.8
    latency = refs["one node, 1 in flight: p50 vs Redis always over a Unix socket"]
    assert latency["value"] == 1.125 and not latency["would_meet"]  # 900 / 800
    assert "short by 17%" in text and "References, not targets" in text
    runs = runs_of([30000, 30000, 30000])
    del runs["redis_always_unix"], runs["redis_always_unix_w1"]
    _, without = compare_redis.report(runs, 3, 1024, 40000, 3000, 2)
    assert without["references"] == []
