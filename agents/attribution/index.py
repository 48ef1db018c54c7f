"""The service matrix compiled for attribution: keyword, product, channel and staff matchers, profiles."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from tools.cues import CueIndex
from tools.matrix import Department

if TYPE_CHECKING:
    from tools.deps import Deps


@dataclass
class AttributionIndex:
    """Everything attribution needs, prepared once per process."""

    departments: list[Department]
    keywords: CueIndex
    keyword_weight: dict[str, float]
    products: CueIndex
    product_owner: dict[str, tuple[str, str, str | None]]
    channel_of: dict[str, str]
    channels_in_text: CueIndex
    line_of: dict[str, str]
    label_owners: dict[str, list[str]]
    staff: CueIndex
    profiles: np.ndarray


def build_attribution_index(deps: Deps) -> AttributionIndex:
    """Compile the matrix into matchers and load department profile vectors."""
    m = deps.matrix
    depts = m.departments
    owners = Counter(k.lower() for d in depts for k in set(d.keywords))
    # A keyword several departments share says little about which one owns the complaint.
    weight = {k: 1.0 / owners[k] for k in owners}
    products: dict[str, list[str]] = {}
    product_owner: dict[str, tuple[str, str, str | None]] = {}
    for d in depts:
        for p in d.products:
            key = f"{d.id}|{p.name}"
            products[key] = [p.name, *p.aliases]
            product_owner[key] = (d.id, p.name, p.business_line)
    channel_of = {c.id.lower(): c.id for c in m.channels}
    channel_of.update({a.lower(): c.id for c in m.channels for a in c.aliases})
    line_of = {b.id.lower(): b.id for b in m.business_lines}
    line_of.update({a.lower(): b.id for b in m.business_lines for a in b.aliases})
    label_owners: dict[str, list[str]] = {}
    for d in depts:
        for lab in d.owns_labels:
            label_owners.setdefault(lab, []).append(d.id)
    ids, vecs, _ = deps.store.all_vectors("service_matrix")
    order = {f"dept:{d.id}": i for i, d in enumerate(depts)}
    profiles = np.zeros((len(depts), vecs.shape[1] if len(vecs) else deps.embedder.dim), dtype=np.float32)
    for ident, vec in zip(ids, vecs, strict=True):
        if ident in order:
            profiles[order[ident]] = vec
    return AttributionIndex(
        departments=depts,
        keywords=CueIndex({d.id: d.keywords for d in depts}, check_denial=False),
        keyword_weight=weight,
        products=CueIndex(products, check_denial=False),
        product_owner=product_owner,
        channel_of=channel_of,
        channels_in_text=CueIndex({c.id: c.aliases for c in m.channels}, check_denial=False),
        line_of=line_of,
        label_owners=label_owners,
        staff=CueIndex({d.id: d.staff for d in depts if d.staff}, check_denial=False),
        profiles=profiles,
    )
