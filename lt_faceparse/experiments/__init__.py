"""Experiment orchestration: runs that fetch or train models, score them and render the results."""
