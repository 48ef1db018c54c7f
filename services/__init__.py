"""The services both doors share: batches, knowledge, jobs and workers, keys, audit, retention."""
