"""Computational graphs of PyTorch models and distances between them."""
