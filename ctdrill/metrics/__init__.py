"""Pure conntrack metrics computed from telemetry samples."""
