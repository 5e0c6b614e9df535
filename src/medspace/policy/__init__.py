"""Usage policies: an ODRL 2.2 subset that a node enforces before it computes anything.

A hospital attaches a policy to each dataset it offers: which actions (aggregate, train,
lookup, synthesize, distribute, reproduce) it permits or prohibits, on which conditions
(purpose, recipient and role, expiry, jurisdiction, number of uses, time since the agreement
began, privacy budget), with which duties. :mod:`medspace.policy.vocabulary` holds the terms
and their IRIs, :mod:`medspace.policy.purposes` the purpose hierarchy,
:mod:`medspace.policy.odrl` the model and its JSON-LD and YAML forms, and
:mod:`medspace.policy.evaluate` the decision, which fails closed on anything it does not
understand. Example policies are in ``examples/``.
"""
