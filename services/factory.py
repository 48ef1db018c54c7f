"""The ``Services`` both doors share and ``build_services()``, the one place they are wired together."""

from __future__ import annotations

from dataclasses import dataclass, field

from services.actions import ActionService
from services.batches import BatchService
from services.config import ApiSettings
from services.feedback import FeedbackService
from services.holder import DepsHolder
from services.jobs import JobStore
from services.knowledge import KnowledgeService
from services.review import ReviewService
from services.runner import JobRunner
from services.security import Auth
from services.tracking import TrackingService
from services.webhooks import Dispatcher, WebhookService
from tools.audit import AuditLog
from tools.clustering import cluster_vectors, tokenize
from tools.deps import Deps
from tools.settings import Settings
from tools.sql import database


@dataclass
class Services:
    """Everything a door's handler may need: the FastAPI app keeps it on ``app.state.services``, the
    MCP server in its lifespan (or borrows the app's when mounted in it)."""

    settings: Settings
    api: ApiSettings
    jobs: JobStore
    holder: DepsHolder
    runner: JobRunner
    batches: BatchService
    knowledge: KnowledgeService
    tracking: TrackingService
    webhooks: WebhookService
    actions: ActionService
    review: ReviewService
    feedback: FeedbackService
    auth: Auth
    audit: AuditLog
    embedder_ready: bool = False
    dispatcher: Dispatcher | None = field(default=None, repr=False)

    def start(self) -> None:
        """Build the ``Deps`` (one process at a time builds the knowledge store), then start the workers
        and the webhook dispatcher."""
        self.holder.start()
        if self.api.run_batches:
            self.runner.start()
        self.dispatcher = self.webhooks.dispatcher()
        self.dispatcher.start()

    def warm_up(self) -> None:
        """Load the embedding model, jieba and scikit-learn now rather than in the first call."""
        texts = ["手机银行升级后登录闪退", "信用卡被盗刷两笔"]
        cluster_vectors(self.holder.get().embedder.embed(texts, kind="query"), 0.5, 2)
        tokenize(texts[0])
        self.embedder_ready = True

    def stop(self) -> None:
        self.runner.stop()
        if self.dispatcher is not None:
            self.dispatcher.stop()


def build_services(
    settings: Settings, api_settings: ApiSettings, *, deps: Deps | None = None, auth: Auth | None = None
) -> Services:
    """Wire the services over one ``VOC_HOME``; nothing runs until :meth:`Services.start`.

    ``deps`` are used instead of building them (tests pass prebuilt ones); ``auth`` is checked
    against ``api_settings``' keys when not given.
    """
    jobs = JobStore(database(settings, "jobs"))
    holder = DepsHolder(settings, jobs, deps)
    runner = JobRunner(
        jobs,
        holder,
        api_settings.job_workers,
        api_settings.lease_seconds,
        api_settings.max_attempts,
        keep_checkpoints=api_settings.keep_checkpoints,
    )
    audit = AuditLog(database(settings, "audit"))
    return Services(
        settings=settings,
        api=api_settings,
        jobs=jobs,
        holder=holder,
        runner=runner,
        batches=BatchService(settings, api_settings, jobs, holder, runner, audit),
        knowledge=KnowledgeService(holder, audit),
        tracking=TrackingService(settings, audit),
        webhooks=WebhookService(settings, audit),
        actions=ActionService(settings, audit),
        review=ReviewService(settings, audit),
        feedback=FeedbackService(settings, audit),
        auth=auth or Auth(api_settings),
        audit=audit,
    )
