"""Documents made from the spec for people and other tools: runbooks, dashboards."""
