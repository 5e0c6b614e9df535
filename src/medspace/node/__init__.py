"""A hospital node: its stores, its own checks, its witness and its outbound agent."""
