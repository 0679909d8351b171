"""Schemas only: the structured configs Hydra fills, their one-line `ConfigError`, and checks of
a field's own value. Nothing here reads a file, a latency table or a data set: those checks run in
the commands' start-up (search.apps).
"""
