"""Targets: hosts from a standard Ansible inventory, and how ctdrill reaches each."""
