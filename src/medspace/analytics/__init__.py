"""Federated analytics computed at the node, with disclosure control."""
