"""voc serve and voc mcp: the HTTP service and the MCP server."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cli.common import EngineOpt, HomeOpt, build_settings, console, err, exit_on_data_file_error
from tools.settings import Settings

if TYPE_CHECKING:
    from services.config import ApiSettings

app = typer.Typer()


def _has_api_keys(host: str, api_settings: ApiSettings) -> bool:
    """Whether API keys are configured. Exits 4 if they cannot be read, or if there are none and
    host is reachable from other machines: without keys anyone there could use the service."""
    from services.config import is_loopback, load_keys

    try:
        keys = load_keys(api_settings)
    except ValueError as exc:
        err.print(f"[bold red]Service configuration error[/]: {exc}")
        raise typer.Exit(4) from None
    if not keys and not is_loopback(host):
        err.print(
            f"[bold red]Refusing to listen on {host} without API keys.[/] Set VOC_API_KEYS (or "
            "VOC_API_KEYS_FILE), or listen on 127.0.0.1."
        )
        raise typer.Exit(4)
    return bool(keys)


@app.command()
def serve(
    host: Annotated[
        str, typer.Option(help="Address to listen on. Without API keys only loopback addresses are allowed.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    workers: Annotated[
        int,
        typer.Option(
            min=1, max=64, help="Server processes; each analyses VOC_API_JOB_WORKERS batches at a time."
        ),
    ] = 1,
    no_workers: Annotated[
        bool,
        typer.Option(
            "--no-workers",
            help="Only accept and serve; `voc worker` processes (same VOC_DATABASE_URL) analyse the batches.",
        ),
    ] = False,
    home: HomeOpt = None,
    log_level: Annotated[str, typer.Option(help="critical, error, warning, info or debug.")] = "info",
) -> None:
    """Run the HTTP service for backend systems (OpenAPI docs at /docs) and the dashboard at /.

    API keys come from VOC_API_KEYS ('KEY:read,write;KEY2:admin') or VOC_API_KEYS_FILE. With no
    keys the service runs in local-only mode and refuses to listen beyond this machine.
    Accepted batches are stored under VOC_HOME and resume after a restart.
    """
    if no_workers:
        import os

        os.environ["VOC_API_RUN_BATCHES"] = "false"  # read by every server process's ApiSettings
    _run(host, port, workers, home, log_level, "VOC Tracer API on http://{addr} (docs: /docs, dashboard: /)")


@app.command()
def dashboard(
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    home: HomeOpt = None,
    log_level: Annotated[str, typer.Option(help="critical, error, warning, info or debug.")] = "warning",
) -> None:
    """Open the dashboard on this machine: trends, tracked problems, alerts and batches.

    Starts the same service as `voc serve` on 127.0.0.1 and prints the address to open in a
    browser. Everything it shows comes from VOC_HOME's warehouse (fill it with
    `voc analyze FILE --track`); every script, style and chart is served by this process.
    """
    _run("127.0.0.1", port, 1, home, log_level, "VOC Tracer dashboard: open http://{addr}/ in a browser")


def _run(host: str, port: int, workers: int, home: Path | None, log_level: str, banner: str) -> None:
    import inspect
    import os

    import uvicorn

    from services.config import ApiSettings
    from services.security import LOCAL_ONLY_WARNING
    from tools.deps import load_data

    if home is not None:
        os.environ["VOC_HOME"] = str(home)  # worker processes build their settings from the environment
    keys = _has_api_keys(host, ApiSettings())
    settings = Settings()
    with exit_on_data_file_error():
        load_data(settings)
    if not keys:
        err.print(f"[bold yellow]{LOCAL_ONLY_WARNING}[/]")
    if workers > 1 and not settings.chroma_url:
        err.print(
            "[yellow]Several processes share the on-disk knowledge store; set VOC_CHROMA_URL to a "
            "Chroma server if you change knowledge data through the API.[/]"
        )
    console.print(banner.format(addr=f"{host}:{port}") + f", state in {settings.home}")
    extra = {}
    if "timeout_worker_healthcheck" in inspect.signature(uvicorn.Config).parameters:
        # With several processes uvicorn restarts a worker that has not finished starting within
        # this time; loading the model and (on first use) building the store takes longer than 5 s.
        extra["timeout_worker_healthcheck"] = 600
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        **extra,  # type: ignore[arg-type]
    )


class McpTransport(StrEnum):
    """The --transport values of voc mcp."""

    stdio = "stdio"
    http = "http"


@app.command("mcp")
def mcp_cmd(
    transport: Annotated[
        McpTransport,
        typer.Option(
            help="stdio: the assistant starts this command and talks over stdin/stdout. "
            "http: streamable HTTP at http://HOST:PORT/mcp for remote assistants."
        ),
    ] = McpTransport.stdio,
    host: Annotated[
        str, typer.Option(help="http only. Without API keys only loopback addresses are allowed.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="http only: TCP port.")] = 8001,
    home: HomeOpt = None,
    engine: EngineOpt = None,
    log_level: Annotated[str, typer.Option(help="critical, error, warning, info or debug.")] = "warning",
) -> None:
    """Serve the agents to MCP assistants (Claude Desktop, IDE agents, in-house copilots).

    Register `voc mcp` as a stdio server in the assistant (see README). Batches submitted through
    it share the HTTP service's job store under VOC_HOME.

    Over http, callers send an API key from VOC_API_KEYS (as for voc serve) as
    'Authorization: Bearer KEY'; with no keys only this machine is served.
    """
    from mcp_server.server import build_server
    from services.config import ApiSettings
    from tools.deps import load_data

    settings = build_settings(home, engine)
    with exit_on_data_file_error():
        load_data(settings)
    if transport is McpTransport.stdio:
        # stdout is the protocol channel: nothing else may be printed there.
        build_server(settings=settings).run("stdio")
        return

    import uvicorn

    from mcp_server.http import http_app
    from services.security import LOCAL_ONLY_WARNING, Auth

    api_settings = ApiSettings()
    keys = _has_api_keys(host, api_settings)
    if not keys:
        err.print(f"[bold yellow]{LOCAL_ONLY_WARNING}[/]")
    auth = Auth(api_settings)
    server = build_server(settings=settings, api_settings=api_settings, auth=auth)
    asgi = http_app(server, auth, host=host, api_settings=api_settings)
    console.print(f"VOC Tracer MCP on http://{host}:{port}/mcp, state in {settings.home}")
    uvicorn.run(asgi, host=host, port=port, log_level=log_level)
