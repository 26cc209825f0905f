"""Drill specs: typed models, YAML loading with file:line:column errors, JSON Schema."""
