"""Conntrack telemetry: a self-contained agent on the target and streams that read it."""
