"""The /metrics page follows the Prometheus text format."""

from __future__ import annotations

import re

from ctdrill.metrics.conntrack import WindowMetrics
from ctdrill.regime.states import Regime
from ctdrill.watch.exposition import TargetView, render

LINE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? '
                  r"[-+0-9.eE]+$")


def test_every_line_is_help_type_or_a_sample() -> None:
    m = WindowMetrics(t=1, window_s=1, count=90, max=100, buckets=100, ctr=0.9, hcp95=4,
                      chain_too_long_per_s=0, nfd_per_s=3, nfd_fraction=0.1,
                      new_flows_per_s=30, early_drop_per_s=0, insert_failed_per_s=0,
                      drops=3, table_full_events=1)
    page = render({"gw": TargetView('g"w', True, Regime.PRESSURED, m, 2, 1),
                   "x": TargetView("x", False, Regime.HEALTHY, None, 0, 0)})
    for line in page.splitlines():
        assert line.startswith(("# HELP ", "# TYPE ")) or LINE.match(line), line
    assert 'ctdrill_regime{host="g\\"w",regime="CT_PRESSURED"} 1' in page
    assert 'ctdrill_target_up{host="x"} 0' in page
    assert 'ctdrill_ctr{host="x"}' not in page  # no metrics yet: no sample, not a zero
