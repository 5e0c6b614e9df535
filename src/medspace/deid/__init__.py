"""De-identification: operators, free-text scrubbing, anonymisation and re-identification risk.

Every record-level output of a node passes through a dataset's de-identification profile
before it leaves; these modules supply the pieces: the profiles themselves
(:mod:`medspace.deid.profiles`), operators that transform one value
(:mod:`medspace.deid.operators`) and a profile applied to a table (:mod:`medspace.deid.apply`),
a recogniser that finds identifiers in clinical notes (:mod:`medspace.deid.text`), an
anonymiser that reaches a target k (and l) by Mondrian partitioning
(:mod:`medspace.deid.anonymise`), the measures of what risk remains
(:mod:`medspace.deid.risk`), the reports a privacy officer reads (:mod:`medspace.deid.report`),
and the node's last line, the egress filter (:mod:`medspace.deid.egress`).
"""
