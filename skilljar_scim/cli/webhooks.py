"""`scim webhooks`: endpoints that receive every change, signed the Standard Webhooks way."""

from typing import Annotated, Optional

import typer

from skilljar_scim.cli import output
from skilljar_scim.cli.context import app_context
from skilljar_scim.cli.options import JsonFlag, wants_json
from skilljar_scim.domain import events, webhooks, worker

app = typer.Typer(help="Send every change to your application as signed HTTPS POSTs.", no_args_is_help=True)

EndpointId = Annotated[str, typer.Argument(help="Endpoint id (see `scim webhooks list`).")]


@app.command()
def add(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(help="Where to POST events: https://..., or http:// to a loopback host.")],
    events_: Annotated[Optional[str], typer.Option("--events", help="Comma-separated types, e.g. user.*,role.granted (default: all but token.* and webhook.*).")] = None,
    description: Annotated[str, typer.Option("--description", help="A note for people, e.g. the receiving app.")] = "",
    allow_http: Annotated[bool, typer.Option("--allow-http", help="Allow a plain http:// URL to a non-loopback host.")] = False,
    json_flag: JsonFlag = False,
) -> None:
    """Register an endpoint and show its signing secret once.

    Example: scim webhooks add https://app.example.com/hooks/scim --events "user.*,role.*"
    """
    actx = app_context(ctx)
    types = webhooks.parse_types(events_)
    keys = actx.keys()
    actx.open_store()
    added = webhooks.add(keys, url, types, description, allow_http)
    data = webhooks.as_dict(added.endpoint)
    if wants_json(ctx, json_flag):
        output.emit_json({"id": data["id"], "url": data["url"], "secret": added.secret, "events": data["events"]})
        return
    typer.echo(added.secret)  # alone on stdout, first: nothing printed after it can keep anyone from it
    output.panel([f"Id: {data['id']}   URL: {output.shown(data['url'])}", f"Events: {_types(data['events'])}",
                  "Copy the signing secret above into the receiver now: it will not be shown again."],
                 title="New webhook endpoint")


def _types(types) -> str:
    return ", ".join(types) if types is not None else "all (except token.* and webhook.*)"


@app.command("list")
def list_(ctx: typer.Context, json_flag: JsonFlag = False) -> None:
    """List endpoints with their status.

    Example: scim webhooks list --json
    """
    app_context(ctx).open_store()
    rows = [webhooks.as_dict(e) for e in webhooks.list_endpoints()]
    if wants_json(ctx, json_flag):
        output.emit_json_list(rows)
        return
    output.table("Webhook endpoints", ("id", "url", "events", "status", "failing since", "description"),
                 ([r["id"], r["url"], _types(r["events"]), _status(r), r["failing_since"], r["description"]]
                  for r in rows))


def _status(row: dict) -> str:
    return f"disabled: {row['disabled_reason']}" if row["status"] == "disabled" else "enabled"


@app.command()
def show(ctx: typer.Context, endpoint_id: EndpointId, json_flag: JsonFlag = False) -> None:
    """Show one endpoint (never its secret).

    Example: scim webhooks show ep_1a2b3c4d5e6f7a8b
    """
    app_context(ctx).open_store()
    data = webhooks.as_dict(webhooks.find(endpoint_id))
    if wants_json(ctx, json_flag):
        output.emit_json(data)
        return
    output.details(f"Webhook endpoint {data['id']}", [(k, _types(v) if k == "events" else v) for k, v in data.items()])


@app.command()
def remove(
    ctx: typer.Context,
    endpoint_id: EndpointId,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Remove an endpoint and its pending deliveries (events stay in the events API).

    Example: scim webhooks remove ep_1a2b3c4d5e6f7a8b --yes
    """
    app_context(ctx).open_store()
    endpoint = webhooks.find(endpoint_id)
    output.confirm(f"Remove webhook endpoint {endpoint.id} ({endpoint.url})? Its pending deliveries are dropped.", yes)
    webhooks.remove(endpoint)
    output.info(f"Removed webhook endpoint {endpoint.id}.")


@app.command()
def enable(ctx: typer.Context, endpoint_id: EndpointId, json_flag: JsonFlag = False) -> None:
    """Enable a disabled endpoint: its waiting deliveries go out again.

    Example: scim webhooks enable ep_1a2b3c4d5e6f7a8b
    """
    app_context(ctx).open_store()
    data = webhooks.as_dict(webhooks.enable(webhooks.find(endpoint_id)))
    if wants_json(ctx, json_flag):
        output.emit_json(data)
        return
    output.info(f"Enabled webhook endpoint {data['id']}.")


@app.command()
def test(ctx: typer.Context, endpoint_id: EndpointId, json_flag: JsonFlag = False) -> None:
    """Queue a `webhook.test` event for this endpoint only (the server's worker sends it).

    Example: scim webhooks test ep_1a2b3c4d5e6f7a8b
    """
    app_context(ctx).open_store()
    event_id = webhooks.send_test(webhooks.find(endpoint_id))
    if wants_json(ctx, json_flag):
        output.emit_json({"endpoint_id": endpoint_id, "event_id": events.event_id(event_id)})
        return
    output.info(f"Queued test event {events.event_id(event_id)} for {endpoint_id}: see `scim webhooks deliveries {endpoint_id}`.")


@app.command("rotate-secret")
def rotate_secret(
    ctx: typer.Context,
    endpoint_id: EndpointId,
    overlap: Annotated[str, typer.Option("--overlap", help="How long the old secret keeps signing too: e.g. 24h, 30m, 7d, 0.")] = "24h",
    json_flag: JsonFlag = False,
) -> None:
    """Give an endpoint a new signing secret (shown once); both sign during the overlap.

    Example: scim webhooks rotate-secret ep_1a2b3c4d5e6f7a8b --overlap 24h
    """
    actx = app_context(ctx)
    window = webhooks.parse_overlap(overlap)
    keys = actx.keys()
    actx.open_store()
    secret = webhooks.rotate_secret(keys, webhooks.find(endpoint_id), window)
    if wants_json(ctx, json_flag):
        output.emit_json({"id": endpoint_id, "secret": secret, "overlap_seconds": int(window.total_seconds())})
        return
    typer.echo(secret)
    output.panel([f"Id: {endpoint_id}   The old secret keeps signing for {output.shown(overlap)}.",
                  "Copy the new signing secret above into the receiver: it will not be shown again."],
                 title="New signing secret")


@app.command()
def deliveries(
    ctx: typer.Context,
    endpoint_id: EndpointId,
    failed: Annotated[bool, typer.Option("--failed", help="Only deliveries that failed (retrying or given up).")] = False,
    limit: Annotated[int, typer.Option("--limit", min=0, help="Newest N deliveries.")] = 50,
    json_flag: JsonFlag = False,
) -> None:
    """List an endpoint's newest deliveries and their attempts.

    Example: scim webhooks deliveries ep_1a2b3c4d5e6f7a8b --failed
    """
    app_context(ctx).open_store()
    rows = webhooks.deliveries(webhooks.find(endpoint_id), failed, limit)
    if wants_json(ctx, json_flag):
        output.emit_json_list(rows)
        return
    columns = ("event_id", "type", "state", "attempts", "last_status", "last_error", "next_attempt_at", "delivered_at")
    output.table(f"Deliveries to {endpoint_id} (newest first)",
                 ("event", "type", "state", "attempts", "status", "error", "next attempt", "delivered"),
                 ([r[c] for c in columns] for r in rows))


@app.command()
def resend(
    ctx: typer.Context,
    event_id: Annotated[str, typer.Argument(help="Event id: evt_… (the webhook-id header, `scim webhooks deliveries`) "
                                                 "or the number `scim events list` shows.")],
    endpoint: Annotated[Optional[str], typer.Option("--endpoint", help="Send to this endpoint (default: every endpoint it went to).")] = None,
    json_flag: JsonFlag = False,
) -> None:
    """Queue an event again, after the endpoint's pending deliveries.

    Example: scim webhooks resend 1042 --endpoint ep_1a2b3c4d5e6f7a8b
    """
    app_context(ctx).open_store()
    row_id = events.row_id(event_id)
    targets = webhooks.resend(row_id, webhooks.find(endpoint) if endpoint else None)
    if wants_json(ctx, json_flag):
        output.emit_json({"event_id": events.event_id(row_id), "endpoints": targets})
        return
    output.info(f"Queued event {events.event_id(row_id)} for {', '.join(targets)}.")


@app.command()
def deliver(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option("--once", help="Send what is due now, then exit (for cron and tests).")] = False,
    json_flag: JsonFlag = False,
) -> None:
    """Send due deliveries: with --once, then exit; without, until Ctrl-C (`scim serve` runs this itself).

    Example: scim webhooks deliver --once
    """
    actx = app_context(ctx)
    settings = actx.settings()
    actx.open_store()
    if not once:
        worker.run_until_stopped(settings)
        return
    tally = worker.drain(settings)
    if wants_json(ctx, json_flag):
        output.emit_json(tally)
        return
    output.info(f"Sent {tally['sent']}: {tally['delivered']} delivered, {tally['failed']} failed.")
