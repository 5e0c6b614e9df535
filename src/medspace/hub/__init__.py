"""The hub: registry, catalog, studies, task broker, aggregation and the audit log."""
