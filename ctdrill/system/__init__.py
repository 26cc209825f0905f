"""Thin wrappers over the local machine: processes, preflight checks, kernel-wide knobs."""
