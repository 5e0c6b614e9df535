"""The audit ledger: an RFC 9162 transparency log with witnessed C2SP checkpoints."""
