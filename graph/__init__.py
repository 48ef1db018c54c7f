"""VOC Tracer: graph."""
