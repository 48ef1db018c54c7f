"""The vector space tracked problems live in: the complaint's text vector plus its root-cause label,
with columns fixed by the taxonomy so that a problem's centroid means the same thing in every batch."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tools.embeddings import normalize_rows


@dataclass(frozen=True)
class TrackingSpace:
    """Centre of the text vectors, the label and dimension columns and their weights.

    The batch analysis weighs the same parts (``scoring.yaml``'s ``cluster.weights``) but numbers
    its one-hot columns by what one batch holds; here every label and dimension the taxonomy
    knows has a column of its own, so vectors from different batches can be compared."""

    center: np.ndarray
    dimensions: tuple[str, ...]
    labels: tuple[str, ...]
    text_weight: float = 1.0
    label_weight: float = 0.75
    dimension_weight: float = 0.15

    @property
    def dim(self) -> int:
        return len(self.center) + len(self.labels) + len(self.dimensions)

    def vectors(
        self, text_vectors: np.ndarray, l2: list[str | None], dimension: list[str | None]
    ) -> np.ndarray:
        """Unit rows: the centred text vector and weighted one-hots of dimension and label."""
        n = len(l2)
        if n == 0:
            return np.zeros((0, self.dim), np.float32)
        text = normalize_rows(np.atleast_2d(text_vectors).astype(np.float32) - self.center)
        label_col = {label: j for j, label in enumerate(self.labels)}
        dim_col = {d: j for j, d in enumerate(self.dimensions)}
        labels = np.zeros((n, len(self.labels)), np.float32)
        dims = np.zeros((n, len(self.dimensions)), np.float32)
        for i, (lab, dim) in enumerate(zip(l2, dimension, strict=True)):
            if lab in label_col:
                labels[i, label_col[lab]] = 1.0
            if dim in dim_col:
                dims[i, dim_col[dim]] = 1.0
        # Labels last: a label added to the taxonomy later only appends a column.
        blocks = [text * self.text_weight, dims * self.dimension_weight, labels * self.label_weight]
        return normalize_rows(np.hstack(blocks)).astype(np.float32)
