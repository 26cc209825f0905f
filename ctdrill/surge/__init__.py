"""Flow surge generator: scapy-built templates, a batch sender at the machine's ceiling.

Lifecycle: spec (SurgeLoad) -> plan (flows, schedule, frames) -> workers (AF_PACKET +
sendmmsg, one process per core) -> result. Pure parts (shapes, pacing, flow spaces,
checksum arithmetic, profile parsing, the destination guard) are unit-tested without
root; the sender and the namespace plumbing are tested against the real kernel.
"""

# ctdrill.spec.models imports SurgeLoad from ctdrill.surge.spec, and ctdrill.surge.spec
# builds on ctdrill.spec.models.Strict. Importing the models first makes either import
# order work: the models module reaches its SurgeLoad import only after Strict exists.
import ctdrill.spec.models  # noqa: F401
