"""What a network may cost: MACs and parameter constraints, projection into a budget's window,
and the per-machine latency tables.
"""
