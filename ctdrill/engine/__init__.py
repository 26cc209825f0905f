"""The drill engine: plan, snapshot, journal, apply, observe, judge, and always revert."""
