"""``/v1/webhooks``: subscriptions to signed events (new urgent problems, alerts, actions, batches done)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Response

from api.dependencies import Admin, Reader, WebhooksDep
from api.errors import responses
from services.security import actor_of
from services.webhooks import WebhookCreated, WebhookIn, Webhooks

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

WebhookId = Annotated[str, Path(min_length=1, max_length=64, description="A subscription id, wh_...")]


@router.get("", response_model=Webhooks, responses=responses(401, 403, 429), summary="Webhook subscriptions")
def list_webhooks(who: Reader, webhooks: WebhooksDep) -> Webhooks:
    """Every subscription with its delivery counts: sent, pending, dead-lettered (given up after
    VOC_WEBHOOK_MAX_ATTEMPTS attempts) and failed attempts. URLs are shown without their query
    string; secrets are never shown again."""
    return webhooks.list()


@router.post(
    "",
    response_model=WebhookCreated,
    status_code=201,
    responses=responses(401, 403, 422, 429),
    summary="Subscribe a URL to events",
)
def add_webhook(body: Annotated[WebhookIn, Body()], who: Admin, webhooks: WebhooksDep) -> WebhookCreated:
    """Events are POSTed to `url` as JSON `{"type", "timestamp", "data"}` with the Standard Webhooks
    headers `webhook-id` (the same on every retry), `webhook-timestamp` and `webhook-signature`
    (`v1,` + base64 HMAC-SHA256 of `id.timestamp.body` keyed with the secret), at least once, retried
    with exponential backoff. `data` holds ids, counts, priorities, periods and masked department
    names, never complaint text. The URL must be http(s); loopback, private and link-local hosts are
    refused unless listed in VOC_WEBHOOK_ALLOW_HOSTS. The answer holds the signing secret (generated
    unless given), shown this once. Only events after the subscription are sent. Admin scope;
    recorded in the audit trail (webhook.create)."""
    return webhooks.add(actor_of(who), body)


@router.delete(
    "/{webhook_id}", status_code=204, responses=responses(401, 403, 404, 429), summary="Remove a subscription"
)
def remove_webhook(webhook_id: WebhookId, who: Admin, webhooks: WebhooksDep) -> Response:
    """Its undelivered events are dropped. Admin scope; recorded in the audit trail (webhook.delete)."""
    webhooks.remove(actor_of(who), webhook_id)
    return Response(status_code=204)
