"""Observability Integration Surface: the shared-memory telemetry block written by the harness,
the Prometheus exporter (``livestack metrics``) and the live dashboard (``livestack top``)."""
