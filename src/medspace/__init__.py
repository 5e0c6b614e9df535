"""medspace: a trusted medical data space.

Hospitals keep patient records on their own nodes; only de-identified, disclosure-controlled
results leave them, and a witnessed, append-only audit log proves who asked, who allowed it and
what left.
"""

__version__ = "0.1.0"
