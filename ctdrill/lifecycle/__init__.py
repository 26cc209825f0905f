"""The drill lifecycle, one module per step over one run context (context.py):

    prepare.py -> apply.py -> observe.py -> judge.py -> revert.py -> report.py

run.py composes them into `run_drill`; policy.py maps every way out to an exit code.
"""

from ctdrill.lifecycle.context import default_runs_dir
from ctdrill.lifecycle.outcome import DrillOutcome
from ctdrill.lifecycle.run import run_drill

__all__ = ["DrillOutcome", "default_runs_dir", "run_drill"]
