"""Flow surge generator: scapy-built templates, a batch sender at the machine's ceiling.

Lifecycle: spec (SurgeLoad) -> plan (flows, schedule, frames) -> workers (AF_PACKET +
sendmmsg, one process per core) -> result. Pure parts (shapes, pacing, flow spaces,
checksum arithmetic, profile parsing, the destination guard) are unit-tested without
root; the sender and the namespace plumbing are tested against the real kernel.
"""
