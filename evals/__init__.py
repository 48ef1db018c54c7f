"""VOC Tracer: evals."""
