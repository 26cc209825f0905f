"""The order-flow probe: what an execution stack feels when conntrack is under pressure."""
