"""VOC Tracer agents: one package per agent (tracing, attribution, analysis, remediation), shared parts."""
