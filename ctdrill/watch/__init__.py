"""Standing watch: the drills' telemetry and regime machine, running all the time."""
