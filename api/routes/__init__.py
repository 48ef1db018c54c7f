"""One router per resource: batches, analyze, knowledge, audit, health."""
