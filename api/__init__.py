"""VOC Tracer: api."""
