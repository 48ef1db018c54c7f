"""``Annotated`` aliases that hand route handlers their caller and services."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from services.actions import ActionService
from services.batches import BatchService
from services.config import Principal, Scope
from services.factory import Services
from services.feedback import FeedbackService
from services.knowledge import KnowledgeService
from services.review import ReviewService
from services.tracking import TrackingService
from services.webhooks import WebhookService

_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key from VOC_API_KEYS.")
_bearer = HTTPBearer(auto_error=False, description="An API key from VOC_API_KEYS, as a bearer token.")


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_batches(services: ServicesDep) -> BatchService:
    return services.batches


def get_knowledge(services: ServicesDep) -> KnowledgeService:
    return services.knowledge


def get_tracking(services: ServicesDep) -> TrackingService:
    return services.tracking


def get_review(services: ServicesDep) -> ReviewService:
    return services.review


def get_webhooks(services: ServicesDep) -> WebhookService:
    return services.webhooks


def get_actions(services: ServicesDep) -> ActionService:
    return services.actions


def get_feedback(services: ServicesDep) -> FeedbackService:
    return services.feedback


BatchesDep = Annotated[BatchService, Depends(get_batches)]
KnowledgeDep = Annotated[KnowledgeService, Depends(get_knowledge)]
TrackingDep = Annotated[TrackingService, Depends(get_tracking)]
WebhooksDep = Annotated[WebhookService, Depends(get_webhooks)]
ActionsDep = Annotated[ActionService, Depends(get_actions)]
ReviewDep = Annotated[ReviewService, Depends(get_review)]
FeedbackDep = Annotated[FeedbackService, Depends(get_feedback)]


def caller(
    request: Request,
    services: ServicesDep,
    api_key: Annotated[str | None, Security(_api_key)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> Principal:
    presented = api_key or (bearer.credentials if bearer else None)
    return services.auth.authenticate(request.client.host if request.client else None, presented)


def require(scope: Scope) -> Callable[..., Principal]:
    def check(services: ServicesDep, who: Annotated[Principal, Depends(caller)]) -> Principal:
        return services.auth.authorize(who, scope)

    return check


Reader = Annotated[Principal, Depends(require("read"))]
Writer = Annotated[Principal, Depends(require("write"))]
Admin = Annotated[Principal, Depends(require("admin"))]
