"""Evaluation: datasets and metrics for runs that gate a model, prompt or index change."""
