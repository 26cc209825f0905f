"""`ctdrill audit`: a read-only hygiene audit of each host's conntrack table (docs/AUDIT.md).

`collect` reads a host over its connector (sysctls, slab, ruleset, the streamed table
listing); `parse`, `topn`, `composition`, `ruleset`, `facts`, `findings`, `specs` and
`markdown` are pure; `run` ties them together for `ctdrill.api.audit`.
"""
