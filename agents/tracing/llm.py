"""Tracing llm engine: the root-cause half of the joint call, checked by code; rules where it fails."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from agents.model_text import for_note
from agents.tracing.grading import grade_for
from agents.tracing.index import TracingIndex
from agents.tracing.rules import trace_rules
from agents.triage import BOTH, TracedComplaint, TriageLog, ask, locate, new_log, owner_draft
from tools.llm import LLMError
from tools.schema import Complaint, Evidence, LabelScore, RootCause, Sentiment
from tools.taxonomy import GRADES

if TYPE_CHECKING:
    from tools.deps import Deps

NO_EVIDENCE_CONFIDENCE = 0.5


def trace_llm(
    complaints: list[Complaint], vectors: np.ndarray, deps: Deps, log: TriageLog | None = None
) -> list[RootCause]:
    """Trace with the model in batches; rules for every item the model could not answer well.

    The same call names each complaint's owner: those are checked against the service matrix
    and left in ``log.drafts`` for the attribution llm engine.
    """
    log = log or new_log(deps, None)
    rules = trace_rules(complaints, vectors, deps)
    replies = ask(complaints, deps, log.meter)
    index: TracingIndex = deps.indexes["tracing"]
    out = list(rules)
    for idx, reply in replies:
        for i in idx:
            c = complaints[i]
            if isinstance(reply, LLMError):
                log.fallback(c.id, BOTH, reply.kind, reply.reason)
                continue
            item = reply.get(c.id)
            if item is None:
                log.fallback(c.id, BOTH, "missing", "missing from the model's reply")
                continue
            cause = _cause(item, c, rules[i], index, deps, log)
            if cause is not None:
                out[i] = cause
                log.traced.add(c.id)
            draft = owner_draft(item, c, deps, log)
            if draft is not None:
                log.drafts[c.id] = draft
    return out


def _cause(
    item: TracedComplaint, c: Complaint, rules: RootCause, index: TracingIndex, deps: Deps, log: TriageLog
) -> RootCause | None:
    """The model's cause where code allows it; None (rules stand) when its label is unusable.

    Labels must exist in the taxonomy and evidence must be quoted verbatim. Everything that
    feeds a priority is computed by code: the grade (never milder than the rules engine's),
    the intensity (the rules engine's, from the sentiment head and lexicon), and a negative
    voice the model may add but never clear. So an instruction inside a complaint cannot lower
    or set its priority.
    """
    folded = c.text.lower()
    if item.label is None:
        reason = "the model gave no label" + ("" if item.is_complaint else " (not a complaint)")
        log.fallback(c.id, ("trace",), "no_label", reason)
        return None
    if item.label not in deps.taxonomy.label_ids:
        log.meter.add("rejected.label")
        log.fallback(
            c.id, ("trace",), "unknown_label", f"label {for_note(item.label)!r} is not in the taxonomy"
        )
        return None
    label = deps.taxonomy.label(item.label)
    l3 = None
    if item.l3:
        if item.l3 in {x.name for x in label.l3}:
            l3 = item.l3
        else:
            log.meter.add("rejected.l3")
            log.note(c.id, f"L3 {for_note(item.l3)!r} is not under {label.id}; dropped")
    secondary = []
    for sec in dict.fromkeys(item.secondary):
        if sec == label.id:
            continue
        if sec not in deps.taxonomy.label_ids:
            log.meter.add("rejected.secondary")
            log.note(c.id, f"secondary label {for_note(sec)!r} is not in the taxonomy; dropped")
            continue
        lab = deps.taxonomy.label(sec)
        secondary.append(
            LabelScore(label=lab.id, dimension=lab.dimension, score=round(item.confidence / 2, 3))
        )
    # The model may add a negative voice the rules missed, never clear one (that would sink a
    # complaint to P4 on the strength of its own text).
    negative = item.is_complaint or rules.is_negative_voice
    grade, reason, grade_hits = grade_for(index, folded, label if negative else None)
    if GRADES.index(rules.grade) < GRADES.index(grade):
        grade, reason = rules.grade, f"{rules.grade_reason}（规则引擎判定更严重，保留）"
    evidence = [ev for q in item.cause_evidence[:3] if (ev := locate(folded, q, label.id))]
    confidence = min(0.99, item.confidence)
    if not evidence and negative:
        confidence = min(confidence, NO_EVIDENCE_CONFIDENCE)
        log.note(c.id, "no verbatim evidence for the label; confidence capped")
    evidence += [
        Evidence(text=m.cue, start=m.start, end=m.end, supports=f"grade:{grade}") for m in grade_hits[:2]
    ]
    # Intensity and score come from the rules engine (they feed severity); the model names the mood.
    lex = rules.sentiment
    sign = {"negative": -1.0, "neutral": 0.0, "positive": 1.0}[item.polarity]
    score = lex.score if lex.score * sign > 0 else round(sign * lex.intensity, 3)
    return RootCause(
        dimension=label.dimension,
        l2=label.id,
        l3=l3,
        confidence=round(confidence, 3),
        secondary=secondary[:3],
        sentiment=Sentiment(
            polarity=item.polarity, score=score, intensity=lex.intensity, emotion=item.emotion
        ),
        is_negative_voice=negative,
        grade=grade,
        grade_reason=reason,
        evidence=evidence,
    )
