"""Clustering, C-BRED search-space reduction, and searches over full or reduced spaces."""
