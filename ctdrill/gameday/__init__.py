"""Game days: suites of drills on a schedule, never inside a blackout window."""
