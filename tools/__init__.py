"""VOC Tracer: tools."""
