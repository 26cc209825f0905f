"""The `probe:` section of a drill spec: synthetic order flow and its cost model."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ctdrill.spec.strict import HostName, Strict


class DriftModel(Strict):
    """Price drift while an order waits: IS(d) = mu*d + sigma*sqrt(2/pi)*sqrt(d) (+penalties).

    mu is the adverse drift in bps per second, sigma the volatility in bps per sqrt(s);
    sqrt(2/pi)*sigma*sqrt(d) is the expected absolute move over a delay d.
    """

    mu_bps_per_s: float = Field(2.0, ge=0, description="Adverse drift, bps per second.")
    sigma_bps_per_sqrt_s: float = Field(10.0, ge=0,
                                        description="Volatility, bps per sqrt(second).")
    retry_penalty_bps: float = Field(0.5, ge=0, description="Extra cost per retry.")
    timeout_penalty_bps: float = Field(25.0, ge=0,
                                       description="Cost of an order that never got acked.")


class ProbeSpec(Strict):
    """An order-flow probe: a client in one namespace, a venue responder in another."""

    client: HostName = Field("client", min_length=1, description="Inventory host sending orders.")
    venue: HostName = Field("venue", min_length=1, description="Inventory host answering them.")
    proto: Literal["tcp", "udp", "both"] = Field("tcp", description="New flow per message "
                                                 "over TCP connections, UDP sockets or both.")
    rate: float = Field(50.0, gt=0, le=2000, description="New orders per second (per proto).")
    tcp_port: int = Field(9001, ge=1, le=65535)
    udp_port: int = Field(9002, ge=1, le=65535)
    report_port: int = Field(9003, ge=1, le=65535, description="Client port that fill "
                             "reports (new flows from the venue) arrive on.")
    timeout_s: float = Field(2.0, gt=0, le=30, description="Per attempt.")
    retries: int = Field(2, ge=0, le=10)
    fill_ratio: float = Field(0.5, ge=0, le=1)
    cancel_ratio: float = Field(0.2, ge=0, le=1)
    replace_ratio: float = Field(0.2, ge=0, le=1)
    start_s: float = Field(0.0, ge=0, description="Seconds into the observation.")
    duration_s: float | None = Field(None, gt=0, description="Default: to the end of the "
                                     "observation.")
    window_s: float = Field(1.0, gt=0, le=60, description="Window for per-window metrics.")
    burst_window_ms: float = Field(50.0, gt=0, description="Short window for bursts.")
    drift: DriftModel = Field(default_factory=DriftModel)
    cdt_threshold_bps: float = Field(5.0, ge=0, description="CDT (p95) above this is a "
                                     "tail breach for the regime machine.")
