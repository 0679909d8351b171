"""The Optuna study: storage, sampler and pruner, the trial objective, local workers, and the
one vocabulary of trial outcomes.
"""
