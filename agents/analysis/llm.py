"""Analysis llm engine: the model names and summarises the common problems, nothing more."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from agents.model_text import clean
from tools.llm import LLM, LLMError, Meter, neutralise, wrap_complaint
from tools.schema import Problem

if TYPE_CHECKING:
    from tools.deps import Deps

MAX_NAME_CHARS = 30
MAX_SUMMARY_CHARS = 160
REPRESENTATIVE_CHARS = 300


class ProblemName(BaseModel):
    """The name and summary of one common problem."""

    id: str = Field(description='The id of the <problem id="..."> element, exactly.')
    name: str = Field(description="A short name: what went wrong where, at most 20 Chinese characters.")
    summary: str = Field(
        description="One sentence on what the customers met and want, at most 80 characters."
    )


class NameProblems(BaseModel):
    """Submit a name and a one-sentence summary for every common problem."""

    problems: list[ProblemName] = Field(description="One entry per problem.")


def _block(p: Problem, deps: Deps) -> str:
    label = deps.taxonomy.label(p.l2).name if p.l2 in deps.taxonomy.label_ids else p.l2
    head = (
        f"根因标签：{p.l2}（{label}）；投诉 {p.impact.complaints} 件；"
        f"关键词：{neutralise('、'.join(p.keywords[:6]))}"
    )
    examples = "\n".join(
        wrap_complaint(f"{p.id}-{k + 1}", r.text[:REPRESENTATIVE_CHARS])
        for k, r in enumerate(p.representatives[:3])
    )
    return f'<problem id="{p.id}">\n{head}\n{examples}\n</problem>'


def name_problems(problems: list[Problem], deps: Deps, meter: Meter) -> None:
    """Rename and summarise ``problems`` in place, in batches; rules names stay on failure.

    Clusters, scores, priorities and ranks are computed before the model sees anything, and
    its answer touches only ``name``, ``summary`` and ``engine``: a problem it does not name
    well keeps the rules name (label and c-TF-IDF keywords).
    """
    llm: LLM = deps.llm  # type: ignore[assignment]
    size = llm.batch_size
    batches = [problems[i : i + size] for i in range(0, len(problems), size)]

    def call(batch: list[Problem]) -> NameProblems | LLMError:
        messages = llm.prompts["name_problems"].messages(
            problems="\n\n".join(_block(p, deps) for p in batch), count=str(len(batch))
        )
        try:
            return llm.structured("analysis", NameProblems, messages, meter)
        except LLMError as exc:
            return exc

    for batch, reply in zip(batches, llm.map(call, batches), strict=True):
        if isinstance(reply, LLMError):
            meter.add(f"fallback.analysis.{reply.kind}", len(batch))
            meter.add("fallback_items.problems", len(batch))
            continue
        answers = {a.id.strip(): a for a in reply.problems}
        for p in batch:
            a = answers.get(p.id)
            if a is None:
                meter.add("fallback.analysis.missing")
                meter.add("fallback_items.problems")
                continue
            name = clean(a.name, MAX_NAME_CHARS)
            if not name:
                meter.add("rejected.name")
                meter.add("fallback_items.problems")
                continue
            p.name = name
            p.summary = clean(a.summary, MAX_SUMMARY_CHARS) or None
            p.engine = "llm"
