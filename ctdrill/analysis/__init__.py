"""Causal CDT analysis of production execution logs against a conntrack pressure timeline.

Functional core, imperative shell: `loaders` is the only module that reads files and
`export` the only one that writes a table (the per-order features); every other module
is a pure function of numpy arrays (see docs/ANALYSIS.md for the method).
"""
