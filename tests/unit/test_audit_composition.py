"""The composition fold and its bounded heavy-hitter counter: exact on a known mix,
within the stated error bound (and the memory cap) on many distinct keys."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable

import pytest

from ctdrill.audit.composition import Composition, CompositionResult, prefix_of
from ctdrill.audit.parse import parse_line
from ctdrill.audit.synth import NOISY, VENUE, lines, mix
from ctdrill.audit.topn import TopCounter


def fold(texts: Iterable[str], cap: int = 4096) -> CompositionResult:
    comp = Composition(cap)
    for text in texts:
        comp.fold_line(text)
    return comp.result()


def test_a_known_mix_is_counted_exactly() -> None:
    n = 2000
    m = mix(n).counts
    r = fold([*lines(n, spread=3000), "conntrack v1.4.7: 0 flow entries", "garbage"])
    assert r.total == n and r.unparsed == 2
    assert r.by_kind["udp"] == m["udp1"]
    assert r.by_kind["tcp ESTABLISHED"] == m["est"] + m["est6"]
    assert r.by_kind["tcp TIME_WAIT"] == m["tw"] and r.by_kind["tcp CLOSE"] == m["close"]
    stale = r.residency
    assert stale["udp_unreplied"].count == m["udp1"] == stale["udp_unreplied"].one_packet
    assert stale["tcp_unreplied"].count == m["syn"]
    assert stale["other_unreplied"].count == m["unknown"]
    assert stale["tcp_time_wait"].count == m["tw"] and stale["tcp_close"].count == m["close"]
    assert stale["tcp_close"].left_max == 8 and stale["tcp_close"].mean_left_s == 8
    assert r.top_error == 0
    assert r.sources[0].key == f"{NOISY}.0/24" and r.sources[0].entries == m["udp1"]
    assert r.sources[0].share == pytest.approx(m["udp1"] / n)
    assert r.destinations[0].key == VENUE
    assert r.ports[0].key == "tcp/9001"
    assert r.ports[0].entries == m["est"] + m["tw"] + m["syn"] + m["close"]
    assert r.stale_by_source[f"{NOISY}.0/24"] == {"udp_unreplied": m["udp1"]}


def test_mean_and_max_left_are_the_entries_own() -> None:
    texts = [f"udp 17 {left} src=10.1.1.1 dst=10.2.2.2 sport=1 dport={left} [UNREPLIED] "
             "src=10.2.2.2 dst=10.1.1.1 sport=2 dport=1 mark=0 use=1" for left in (10, 20, 90)]
    res = fold(texts).residency["udp_unreplied"]
    assert (res.count, res.mean_left_s, res.left_max) == (3, 40, 90)
    assert res.counted == 0 and res.one_packet == 0  # no counters: not claimed one-packet


def test_prefixes() -> None:
    assert prefix_of("10.77.0.2") == "10.77.0.0/24"
    assert prefix_of("2001:db8:1:2:3::4") == "2001:db8:1:2::/64"
    assert prefix_of("1.2") == "other" and prefix_of("::zz") == "other"


def test_topcounter_is_exact_below_its_cap() -> None:
    tc: TopCounter[str] = TopCounter(cap=64)
    truth = Counter(f"k{i % 50}" for i in range(5000))
    for key in (f"k{i % 50}" for i in range(5000)):
        tc.add(key)
    assert tc.error == 0 and tc.trims == 0
    assert {h.key: h.count for h in tc.top(50)} == dict(truth)


def test_topcounter_keeps_heavy_hitters_within_the_bound_in_bounded_memory() -> None:
    rng = random.Random(7)
    cap = 64
    stream = [f"heavy{j}" for j in range(3) for _ in range(2000)]
    stream += [f"light{rng.randrange(100_000)}" for _ in range(30_000)]
    rng.shuffle(stream)
    tc: TopCounter[str] = TopCounter(cap)
    most = 0
    for key in stream:
        tc.add(key)
        most = max(most, len(tc.counts))
    truth = Counter(stream)
    assert most <= cap and tc.trims > 0 and tc.error > 0
    assert tc.error <= len(stream) / (tc.keep + 1)
    for h in tc.top(3):
        assert h.key.startswith("heavy")
        assert h.count <= truth[h.key] <= h.count + tc.error
    for key, count in tc.counts.items():
        assert count <= truth[key] <= count + tc.error


def test_the_fold_stays_bounded_with_a_million_distinct_keys_in_a_small_cap() -> None:
    comp = Composition(cap=128)
    for text in lines(20_000, spread=1_000_000):
        entry = parse_line(text)
        assert entry is not None
        comp.add(entry)
    for counter in (comp.sources, comp.destinations, comp.ports, comp.stale_src,
                    comp.stale_dst):
        assert len(counter.counts) <= 128
    r = comp.result()
    assert r.top_error > 0
    assert r.sources[0].key == f"{NOISY}.0/24"  # the heavy hitter survives the trims
    assert r.sources[0].entries <= mix(20_000).counts["udp1"] <= r.sources[0].entries \
        + r.top_error
    assert len(r.by_kind) <= 256
