"""`scim status`: the one screen an admin reads first, and `--check` for cron and monitoring."""

from typing import Annotated

import typer

from skilljar_scim.base.errors import ExitCode
from skilljar_scim.cli import output
from skilljar_scim.cli.context import app_context
from skilljar_scim.cli.options import JsonFlag, wants_json
from skilljar_scim.domain import status as status_domain

CHECK_HELP = "Print only the problems, one line each on stderr, and exit 10 if there is any (cron, monitoring)."


def status(
    ctx: typer.Context,
    check: Annotated[bool, typer.Option("--check", help=CHECK_HELP)] = False,
    expiring_within: Annotated[int, typer.Option(
        "--expiring-within", min=0, metavar="DAYS", help="A live token expiring within DAYS days is a problem.",
    )] = status_domain.DEFAULT_EXPIRING_DAYS,
    json_flag: JsonFlag = False,
) -> None:
    """Show the store, tokens, users, mappings and the last provisioning; list what needs attention.

    Example: scim status --check --expiring-within 30 || mail -s "SCIM needs attention" ops@example.com
    """
    report = status_domain.collect(app_context(ctx).settings(), expiring_within)
    if wants_json(ctx, json_flag):
        output.emit_json(report.as_dict())
    elif not check:
        _render(report)
    if check and report.problems:
        for problem in report.problems:
            output.info(f"problem: {problem}")
        raise typer.Exit(ExitCode.CHECK_FAILED)


def _render(report: status_domain.Status) -> None:
    store = report.store
    output.details("Store", [
        ("kind", store.kind), ("location", store.location),
        ("schema version", f"{store.schema_version} (this scim: {store.expected_schema_version})"),
        ("size", output.size(store.size_bytes)), ("integrity", store.integrity),
    ])
    output.table("Live tokens", ("name", "id", "status", "expires", "last request", "refused requests"), (
        [t.name, t.id, t.status, _expiry(t), output.when(t.last_used_at), t.refused_requests] for t in report.tokens
    ))
    output.details("Directory", [*((f"users {state}", n) for state, n in report.users.items()), ("groups", report.groups)])
    _pairs("Mappings waiting for their group to be pushed", report.mappings_waiting_for_group)
    _pairs("Mappings to roles not in [roles.catalog] (granted to nobody)", report.mappings_to_missing_roles)
    _last(report.last_provisioning)
    if report.webhooks:
        output.table("Webhook endpoints", ("id", "url", "status", "failing since", "waiting deliveries"), (
            [w["id"], w["url"], w["status"], output.when(w["failing_since"], "-"), w["pending_deliveries"]]
            for w in report.webhooks
        ))
    _problems(report.problems)


def _expiry(token: status_domain.TokenState) -> str:
    if token.expires_at is None:
        return "never"
    shown = f"{output.when(token.expires_at)} ({token.days_left:g} days)"
    return f"! {shown}" if token.expiring_soon else shown


def _pairs(title: str, pairs: list[dict]) -> None:
    if pairs:
        output.table(title, ("group", "role"), ([p["group"], p["role"]] for p in pairs))


def _last(event: dict | None) -> None:
    if event is None:
        output.info("No identity provider has provisioned anything yet.")
        return
    resource = f"{event['resource_type']} {event['resource_id']}" if event["resource_id"] else "-"
    output.details("Last provisioning", [("at", event["at"]), ("action", event["action"]),
                                         ("by", event["actor"]), ("resource", resource)])


def _problems(problems: list[str]) -> None:
    if not problems:
        output.info("No problems found.")
    for problem in problems:
        output.info(f"problem: {problem}")
