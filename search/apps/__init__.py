"""The console scripts: each composes its Hydra config, runs its start-up checks (one line, exit
code 2 on a bad input, before anything is written), then hands over to the layer below.
"""
