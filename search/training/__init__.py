"""Training one network: the trainer, the W&B runs, zero-cost proxies, and weights files with
their model card.
"""
