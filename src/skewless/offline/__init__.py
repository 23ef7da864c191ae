"""Training sets as recorded facts: manifests (what built a training set), the reports
of reproducing one, and the environment they were built in. Pure data: no engine."""
