"""The namespace lab: client -> gw -> venue on one machine, plus the kernel owner."""
