"""Keep a batch in the warehouse and give its negative voices stable tracked-problem ids (TP-0001…).

A batch is taken period by period, oldest first, and each period only sees the warehouse as the
periods before it left it, so a year sent at once builds the same problems as the same year sent
month by month. Within a period: a complaint close enough to a problem's centroid joins it; the
rest are clustered, and each cluster is matched one-to-one to a problem (an assignment solver on
centroid similarity) or opens a new one. A new problem close to an old one records where it split
from; two problems whose centroids meet are merged, and the merge is recorded.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
from scipy.optimize import linear_sum_assignment

from loop.space import TrackingSpace
from loop.warehouse import StoredComplaint, Warehouse, text_hash
from tools.clustering import cluster_vectors
from tools.embeddings import normalize_rows
from tools.sql import Conn, upsert

CHANGED_TEXT = "new_version"


@dataclass(frozen=True)
class TrackingRules:
    """Similarity thresholds in the tracking space (cosine of unit vectors); see ``Settings``."""

    assign_similarity: float
    match_similarity: float
    related_similarity: float
    merge_similarity: float
    distance_threshold: float  # the batch analysis' clustering cut
    min_cluster: int


@dataclass(frozen=True)
class TrackItem:
    """One analysed, masked complaint as the tracker receives it."""

    id: str
    text: str
    period: str
    received_at: str | None
    customer_id: str | None
    negative: bool
    dimension: str | None
    l2: str | None
    l3: str | None
    department_id: str | None
    department: str | None
    grade: str
    priority: str
    severity: float
    flags: list[str]
    vector: np.ndarray  # the text vector
    read_hash: str  # the cache key of the text vector
    problem_name: str | None = None  # the batch problem it was grouped in, to name a new one
    evidence: tuple[str, ...] = ()  # the root cause's evidence words, as matched in the masked text
    label_confidence: float | None = None  # as shown with the result, for the review queue
    department_confidence: float | None = None
    grade_confidence: float | None = None
    engine: str | None = None


@dataclass
class _Problem:
    id: str
    seq: int
    name: str
    l2: str | None
    dimension: str | None
    department_id: str | None
    department: str | None
    first_period: str
    total: np.ndarray
    n: int
    created_batch: str
    merged_into: str | None = None
    touched: bool = False

    def centroid(self) -> np.ndarray:
        norm = float(np.linalg.norm(self.total))
        return self.total / norm if norm > 0 else self.total


@dataclass
class TrackOutcome:
    """What the batch learnt: each complaint's tracked problem and what changed."""

    tracked_of: dict[str, str | None] = field(default_factory=dict)
    new_versions: list[str] = field(default_factory=list)
    opened: list[str] = field(default_factory=list)
    merged: list[tuple[str, str]] = field(default_factory=list)  # (absorbed, into)
    periods: list[str] = field(default_factory=list)


def _mode(values: list[str | None]) -> str | None:
    counts = Counter(v for v in values if v)
    return min(counts, key=lambda v: (-counts[v], v)) if counts else None


def _load(conn: Conn, dim: int) -> dict[str, _Problem]:
    out = {}
    for r in conn.execute("SELECT * FROM problems ORDER BY seq"):
        total = np.frombuffer(r["centroid_sum"], dtype=np.float32).copy()
        out[r["id"]] = _Problem(
            id=r["id"],
            seq=r["seq"],
            name=r["name"],
            l2=r["l2"],
            dimension=r["dimension"],
            department_id=r["department_id"],
            department=r["department"],
            first_period=r["first_period"],
            # Labels added to the taxonomy since get new columns at the end: pad older centroids.
            total=np.pad(total, (0, max(0, dim - len(total))))[:dim].astype(np.float32),
            n=r["n"],
            created_batch=r["created_batch"],
            merged_into=r["merged_into"],
        )
    return out


_SAVE_PROBLEM = upsert(
    "problems",
    (
        "id seq name l2 dimension department_id department first_period centroid_sum n merged_into "
        "created_batch"
    ).split(),
    ["id"],
)


def _save(conn: Conn, problems: dict[str, _Problem]) -> None:
    conn.executemany(
        _SAVE_PROBLEM,
        [
            (
                p.id,
                p.seq,
                p.name,
                p.l2,
                p.dimension,
                p.department_id,
                p.department,
                p.first_period,
                p.total.astype(np.float32).tobytes(),
                p.n,
                p.merged_into,
                p.created_batch,
            )
            for p in problems.values()
            if p.touched
        ],
    )


class Tracker:
    """Assigns one batch's complaints to tracked problems inside one warehouse transaction."""

    def __init__(
        self,
        warehouse: Warehouse,
        space: TrackingSpace,
        rules: TrackingRules,
        embedder: str,
        label_name: Callable[[str], str] = str,
    ) -> None:
        self.warehouse = warehouse
        self.space = space
        self.rules = rules
        self.embedder = embedder
        self.label_name = label_name
        # Lineage found while assigning a period, written with that period's merges.
        self._pending_lineage: list[tuple[str, str, str, str, float]] = []

    def track(self, conn: Conn, items: list[TrackItem], *, source: str, batch_id: str) -> TrackOutcome:
        """Store ``items`` (updating what the warehouse already holds) and assign their problems,
        inside the caller's transaction."""
        outcome = TrackOutcome()
        salt = self.warehouse.customer_salt(conn)
        problems = _load(conn, self.space.dim)
        by_period: dict[str, list[TrackItem]] = {}
        for it in items:
            by_period.setdefault(it.period, []).append(it)
        for period in sorted(by_period):
            chunk = sorted(by_period[period], key=lambda it: (it.received_at or "", it.id))
            self._period(conn, chunk, period, problems, outcome, source, batch_id, salt)
            outcome.periods.append(period)
        _save(conn, problems)
        return outcome

    # ── one period ────────────────────────────────────────────────────────────────────────────

    def _period(
        self,
        conn: Conn,
        items: list[TrackItem],
        period: str,
        problems: dict[str, _Problem],
        outcome: TrackOutcome,
        source: str,
        batch_id: str,
        salt: bytes,
    ) -> None:
        stored = self.warehouse.stored(conn, source, [it.id for it in items])
        vectors = self.space.vectors(
            np.vstack([it.vector for it in items]), [it.l2 for it in items], [it.dimension for it in items]
        )
        keep: dict[str, str | None] = {}
        versions: dict[str, int] = {}
        text_keys = {it.id: text_hash(it.text) for it in items}
        pending: list[int] = []
        for i, it in enumerate(items):
            old = stored.get(it.id)
            text_key = text_keys[it.id]
            versions[it.id] = 1
            if old is not None:
                versions[it.id] = old.version
                if old.text_hash != text_key:
                    versions[it.id] = old.version + 1
                    outcome.new_versions.append(it.id)
                if old.text_hash == text_key and old.negative == it.negative:
                    # The same complaint sent again keeps what it had (its problem, through any
                    # merge since, or none), so a resent export changes no count.
                    keep[it.id] = self._alive(problems, old.tracked_id) if old.tracked_id else None
                    continue
                if old.tracked_id and old.tracked_id in problems:
                    self._leave(conn, problems[old.tracked_id], old)
            if it.negative:
                pending.append(i)
        assigned = dict(keep)
        assigned.update(self._assign(items, vectors, pending, problems, period, batch_id, outcome))
        for i, it in enumerate(items):
            tp = assigned.get(it.id)
            if tp is not None and it.id not in keep:
                p = problems[tp]
                p.total = p.total + vectors[i]
                p.n += 1
                p.touched = True
        self._merge(conn, problems, period, outcome)
        for it in items:
            tp = assigned.get(it.id)
            tp = self._alive(problems, tp) if tp else None
            outcome.tracked_of[it.id] = tp
            flags = list(it.flags)
            if it.id in outcome.new_versions and CHANGED_TEXT not in flags:
                flags.append(CHANGED_TEXT)
            customer = (
                hmac.new(salt, it.customer_id.encode("utf-8"), hashlib.sha256).hexdigest()[:32]
                if it.customer_id
                else None
            )
            self.warehouse.put(
                conn,
                StoredComplaint(
                    source=source,
                    id=it.id,
                    version=versions[it.id],
                    text_hash=text_keys[it.id],
                    text=it.text,
                    period=period,
                    received_at=it.received_at,
                    negative=it.negative,
                    dimension=it.dimension,
                    l2=it.l2,
                    l3=it.l3,
                    department_id=it.department_id,
                    department=it.department,
                    grade=it.grade,
                    priority=it.priority,
                    severity=it.severity,
                    customer_hash=customer,
                    batch_id=batch_id,
                    tracked_id=tp,
                    embedder=self.embedder,
                    read_hash=it.read_hash,
                    flags=flags,
                    evidence=list(it.evidence),
                    label_confidence=it.label_confidence,
                    department_confidence=it.department_confidence,
                    grade_confidence=it.grade_confidence,
                    engine=it.engine,
                ),
            )

    def _leave(self, conn: Conn, problem: _Problem, old: StoredComplaint) -> None:
        """Take a stored complaint's old contribution out of its problem's centroid."""
        cached = self.warehouse_vectors(conn, old)
        if cached is None:
            return
        vec = self.space.vectors(cached[None, :], [old.l2], [old.dimension])[0]
        problem.total = problem.total - vec
        problem.n = max(0, problem.n - 1)
        problem.touched = True

    def warehouse_vectors(self, conn: Conn, old: StoredComplaint) -> np.ndarray | None:
        row = conn.execute(
            "SELECT vector FROM vectors WHERE embedder = ? AND text_hash = ?", (old.embedder, old.read_hash)
        ).fetchone()
        return np.frombuffer(row["vector"], dtype=np.float32) if row else None

    @staticmethod
    def _alive(problems: dict[str, _Problem], tp: str) -> str:
        seen = set()
        while problems[tp].merged_into and tp not in seen:
            seen.add(tp)
            tp = problems[tp].merged_into or tp
        return tp

    def _assign(
        self,
        items: list[TrackItem],
        vectors: np.ndarray,
        pending: list[int],
        problems: dict[str, _Problem],
        period: str,
        batch_id: str,
        outcome: TrackOutcome,
    ) -> dict[str, str]:
        out: dict[str, str] = {}
        if not pending:
            return out
        live = [p for p in problems.values() if p.merged_into is None and p.n > 0]
        centroids = np.vstack([p.centroid() for p in live]) if live else None
        rest = []
        for i in pending:
            if centroids is not None:
                sims = centroids @ vectors[i]
                j = int(np.argmax(sims))
                if sims[j] >= self.rules.assign_similarity:
                    out[items[i].id] = live[j].id
                    continue
            rest.append(i)
        if not rest:
            return out
        labels = cluster_vectors(
            vectors[rest], distance_threshold=self.rules.distance_threshold, min_size=self.rules.min_cluster
        )
        groups: dict[int, list[int]] = {}
        for i, lab in zip(rest, labels, strict=True):
            if lab >= 0:
                groups.setdefault(int(lab), []).append(i)
        # Largest first, then by the first member's id: the same input always opens the same ids.
        clusters = sorted(groups.values(), key=lambda m: (-len(m), items[m[0]].id))
        if not clusters:
            return out
        cvecs = normalize_rows(np.vstack([vectors[m].sum(axis=0) for m in clusters]))
        matched: dict[int, _Problem] = {}
        if centroids is not None:
            sims = cvecs @ centroids.T
            rows, cols = linear_sum_assignment(-sims)
            for r, c in zip(rows, cols, strict=True):
                if sims[r, c] >= self.rules.match_similarity:
                    matched[int(r)] = live[int(c)]
        next_seq = max((p.seq for p in problems.values()), default=0) + 1
        for k, members in enumerate(clusters):
            target = matched.get(k)
            if target is None:
                target = self._open(items, members, next_seq, period, batch_id)
                next_seq += 1
                problems[target.id] = target
                outcome.opened.append(target.id)
                if centroids is not None:
                    sims_k = centroids @ cvecs[k]
                    j = int(np.argmax(sims_k))
                    if sims_k[j] >= self.rules.related_similarity:
                        self._lineage(target.id, live[j].id, "split_from", period, float(sims_k[j]))
            for i in members:
                out[items[i].id] = target.id
        return out

    def _open(
        self, items: list[TrackItem], members: list[int], seq: int, period: str, batch_id: str
    ) -> _Problem:
        group = [items[i] for i in members]
        l2 = _mode([it.l2 for it in group])
        name = _mode([it.problem_name for it in group]) or (self.label_name(l2) if l2 else "未归类问题")
        return _Problem(
            id=f"TP-{seq:04d}",
            seq=seq,
            name=name,
            l2=l2,
            dimension=_mode([it.dimension for it in group]),
            department_id=_mode([it.department_id for it in group]),
            department=_mode([it.department for it in group]),
            first_period=period,
            total=np.zeros(self.space.dim, np.float32),
            n=0,
            created_batch=batch_id,
            touched=True,
        )

    def _lineage(self, problem: str, related: str, kind: str, period: str, similarity: float) -> None:
        self._pending_lineage.append((problem, related, kind, period, round(similarity, 4)))

    def _merge(self, conn: Conn, problems: dict[str, _Problem], period: str, outcome: TrackOutcome) -> None:
        """Problems whose centroids have met become one: the younger joins the older, on record."""
        live = sorted(
            (p for p in problems.values() if p.merged_into is None and p.n > 0), key=lambda p: p.seq
        )
        if len(live) > 1:
            cents = np.vstack([p.centroid() for p in live])
            sims = cents @ cents.T
            for a in range(len(live)):
                if live[a].merged_into:
                    continue
                for b in range(a + 1, len(live)):
                    older, younger = live[a], live[b]
                    if younger.merged_into or not (older.touched or younger.touched):
                        continue
                    if sims[a, b] >= self.rules.merge_similarity:
                        older.total = older.total + younger.total
                        older.n += younger.n
                        younger.merged_into = older.id
                        younger.total = np.zeros_like(younger.total)
                        younger.n = 0
                        older.touched = younger.touched = True
                        conn.execute(
                            "UPDATE complaints SET tracked_id = ? WHERE tracked_id = ?",
                            (older.id, younger.id),
                        )
                        self._lineage(younger.id, older.id, "merged_into", period, float(sims[a, b]))
                        outcome.merged.append((younger.id, older.id))
        for row in self._pending_lineage:
            conn.execute(
                upsert(
                    "lineage",
                    ["problem_id", "related_id", "kind", "period", "similarity"],
                    ["problem_id", "related_id", "kind"],
                ),
                row,
            )
        self._pending_lineage = []


def with_problem_names(items: list[TrackItem], names: dict[str, str]) -> list[TrackItem]:
    """Items carrying the name of the batch problem each was grouped in."""
    return [replace(it, problem_name=names.get(it.id)) for it in items]
