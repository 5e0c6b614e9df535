"""The data space's certificate authority and mutual TLS."""
