"""Ansible through ansible-runner: the only way ctdrill changes a target's state."""
