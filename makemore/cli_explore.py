"""Exploration commands (lr-find, plot-emb, plot-loss), registered on makemore.cli.app."""
