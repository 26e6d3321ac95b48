"""Relay: continual learning for recommender systems with Distill-CF summaries."""

__version__ = "0.1.0"
