"""Controlled experiments over many networks: ablations, fixed-budget comparisons and the
benchmark protocol.
"""
