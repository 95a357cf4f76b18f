"""Shared code, data loaders and graders of the course "How to Understand BERT"."""

__version__ = "0.1.0"
