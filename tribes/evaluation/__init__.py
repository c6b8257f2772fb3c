"""Offline evaluation: splits, metrics, baselines and reports (see ``tribes evaluate``)."""
