"""The doors' shared settings (``VOC_API_*``): API keys with their scopes, limits, the job worker pool."""

from __future__ import annotations

import hashlib
import importlib.metadata
import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Scope = Literal["read", "write", "admin"]
SCOPES: tuple[Scope, ...] = ("read", "write", "admin")
MIN_KEY_CHARS = 16


# `voc worker --nice` by default. Workers are batch work: below an API sharing their machine, so
# accepting stays fast (`voc bench --workers 1,2`: accept p99 0.55 s at nice 0, 0.39 s at 10,
# beside two busy workers); on a machine of their own it changes nothing.
WORKER_NICE = 10


class ApiSettings(BaseSettings):
    """``VOC_API_*`` environment variables (or a ``.env`` file)."""

    model_config = SettingsConfigDict(env_prefix="VOC_API_", env_file=".env", extra="ignore")

    keys: str | None = Field(
        None, description="API keys and their scopes: 'KEY:read,write;OTHER_KEY:admin'. Unset: local-only."
    )
    keys_file: Path | None = Field(
        None, description="JSON file with API keys (see README); used together with VOC_API_KEYS."
    )
    job_workers: int = Field(2, ge=1, le=32, description="Batches analysed at the same time per process.")
    run_batches: bool = Field(
        True, description="Analyse accepted batches in this process; false when `voc worker`s do it."
    )
    sync_max_complaints: int = Field(200, ge=1, description="Largest batch POST /v1/analyze accepts.")
    max_body_bytes: int = Field(64 * 1024 * 1024, ge=1024, description="Larger request bodies get 413.")
    rate_per_minute: int = Field(600, ge=0, description="Requests per minute per key (0 = no limit).")
    lease_seconds: float = Field(
        60.0, gt=0, description="A running batch whose worker is silent this long is taken over."
    )
    max_attempts: int = Field(3, ge=1, description="Attempts before an interrupted batch is marked failed.")
    keep_checkpoints: bool = Field(
        False,
        description="Keep a finished batch's whole checkpoint history and chunk task rows (a debugging and "
        "audit aid; they are several times the batch's results). Off: compacted, then deleted.",
    )
    row_errors_shown: int = Field(1000, ge=1, description="Row errors listed in a status or error body.")


class KeyEntry(BaseModel):
    """One API key in the keys file: the key itself or its SHA-256, its scopes, an optional rate."""

    name: str | None = None
    key: str | None = Field(None, min_length=MIN_KEY_CHARS)
    sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    scopes: list[Scope] = Field(min_length=1)
    rate_per_minute: int | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _one_secret(self) -> KeyEntry:
        if (self.key is None) == (self.sha256 is None):
            raise ValueError("give exactly one of key or sha256")
        return self


@dataclass(frozen=True)
class Principal:
    """Who is calling: a configured key (by name, never the key itself) or the local user."""

    name: str
    scopes: frozenset[str]
    rate_per_minute: int

    def allows(self, scope: Scope) -> bool:
        return "admin" in self.scopes or scope in self.scopes


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def load_keys(settings: ApiSettings) -> dict[str, Principal]:
    """Configured keys by SHA-256 of the key; raises ``ValueError`` naming what is wrong (never a key)."""
    keys: dict[str, Principal] = {}

    def add(sha: str, name: str | None, scopes: list[str], rate: int | None) -> None:
        if sha in keys:
            raise ValueError(f"API key {name or sha[:8]} is configured twice")
        keys[sha] = Principal(
            name=name or f"key-{sha[:8]}",
            scopes=frozenset(scopes),
            rate_per_minute=settings.rate_per_minute if rate is None else rate,
        )

    for i, part in enumerate((settings.keys or "").split(";"), start=1):
        part = part.strip()
        if not part:
            continue
        key, sep, scopes_text = part.rpartition(":")
        scopes = [s.strip() for s in scopes_text.split(",") if s.strip()]
        if not sep or not key:
            raise ValueError(f"VOC_API_KEYS entry {i}: write KEY:scope[,scope]")
        if len(key) < MIN_KEY_CHARS:
            raise ValueError(f"VOC_API_KEYS entry {i}: keys must have at least {MIN_KEY_CHARS} characters")
        bad = [s for s in scopes if s not in SCOPES]
        if bad or not scopes:
            raise ValueError(f"VOC_API_KEYS entry {i}: scopes must be among read, write, admin")
        add(digest(key), None, scopes, None)

    if settings.keys_file is not None:
        path = settings.keys_file
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"{path}: cannot read the API keys file ({type(exc).__name__})") from None
        items = raw.get("keys") if isinstance(raw, dict) else raw
        if not isinstance(items, list):
            raise ValueError(f'{path}: expected a list of keys or {{"keys": [...]}}')
        for i, item in enumerate(items):
            try:
                entry = KeyEntry.model_validate(item)
            except ValidationError as exc:
                where = "; ".join(
                    f"{'.'.join(map(str, e['loc'])) or 'entry'}: {e['msg']}" for e in exc.errors()
                )
                raise ValueError(f"{path}: keys[{i}]: {where}") from None
            sha = entry.sha256 or digest(entry.key or "")
            add(sha, entry.name, list(entry.scopes), entry.rate_per_minute)
    return keys


def package_version() -> str:
    """The installed voc-tracer version (``dev`` in a checkout), as both doors announce it."""
    try:
        return importlib.metadata.version("voc-tracer")
    except importlib.metadata.PackageNotFoundError:
        return "dev"


def is_loopback(host: str | None) -> bool:
    """True for addresses only this machine can reach (``localhost``, 127.0.0.0/8, ::1)."""
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
