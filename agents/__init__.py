"""VOC Tracer: agents."""
