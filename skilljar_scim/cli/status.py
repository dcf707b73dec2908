"""`scim status`: the one screen an admin reads first, and `--check` for cron and monitoring."""

from typing import Annotated

import typer

from skilljar_scim.base.errors import ExitCode
from skilljar_scim.cli import output
from skilljar_scim.cli.context import app_context
from skilljar_scim.cli.options import JsonFlag, wants_json
from skilljar_scim.domain import status as status_domain

command = typer.Typer(add_completion=False)

CHECK_HELP = ("Print only the problems, one line each on stdout (nothing when all is well), "
              "and exit 10 if there is any: for cron and monitoring agents.")


@command.command()
def status(
    ctx: typer.Context,
    check: Annotated[bool, typer.Option("--check", help=CHECK_HELP)] = False,
    expiring_within: Annotated[int, typer.Option(
        "--expiring-within", min=0, metavar="DAYS",
        help="A token expiring within DAYS days is a problem (and highlighted).", show_default=True,
    )] = status_domain.DEFAULT_EXPIRING_DAYS,
    json_flag: JsonFlag = False,
) -> None:
    """Show the service's state and what needs attention.

    The store, tokens, users and groups, mappings, the last provisioning, webhook endpoints,
    and the problems, numbered. It only reads the store. Without --check it exits 0 whatever it finds; with --check it
    exits 10 when there is a problem (README "Status and monitoring").

    Example: scim status --check --expiring-within 30
    """
    report = status_domain.collect(app_context(ctx).settings(), expiring_within)
    if wants_json(ctx, json_flag):
        output.emit_json(report.as_dict())
    elif check:
        output.lines(f"problem: {problem}" for problem in report.problems)
    else:
        _render(report)
    if check and report.problems:
        raise typer.Exit(ExitCode.CHECK_FAILED)


def _render(report: status_domain.Status) -> None:
    _store(report.store)
    if report.users:  # empty when the store failed its checks: nothing more was read from it
        _directory(report)
    _problems(report.problems)


def _store(store: status_domain.StoreState) -> None:
    output.details("Store", [
        ("kind", store.kind), ("location", store.location),
        ("schema version", f"{output.shown(store.schema_version)} (this scim: {store.expected_schema_version})"),
        ("size", output.size(store.size_bytes)), ("integrity", store.integrity),
    ])


def _directory(report: status_domain.Status) -> None:
    output.table(f"Tokens (not revoked; within {report.expiring_within_days} days of expiry is a problem)",
                 ("name", "id", "status", "expires", "days left", "last request", "refused"),
                 (_token_row(t) for t in report.tokens))
    output.details("Directory", [*((f"users {state}", n) for state, n in report.users.items()), ("groups", report.groups)])
    _mappings("Mappings waiting for their group (grant nothing yet)", report.mappings_waiting_for_group, "status")
    _mappings("Mappings in conflict (the group named so now gets nothing)", report.mappings_in_conflict,
              "conflict_group_id")
    _mappings("Mappings to roles not in [roles.catalog] (still granted)", report.mappings_to_missing_roles)
    _last(report.last_provisioning)
    _webhooks(report.webhooks)


def _token_row(token: status_domain.TokenState) -> list:
    """Return a token's cells; the ones that need attention are highlighted at a terminal."""
    refused = token.status in ("expired", "unverifiable")
    late = token.expiring_soon or token.status == "expired"
    days = "-" if token.days_left is None else f"{token.days_left:g}"
    return [token.name, token.id, _marked(token.status, refused), _marked(output.when(token.expires_at), late),
            _marked(days, late), output.when(token.last_used_at), token.refused_requests]


def _marked(value: str, late: bool):
    return output.Attention(value) if late else value


def _mappings(title: str, rows: list[dict], extra: str | None = None) -> None:
    if rows:
        columns = ("group", "role", *([extra] if extra else []))
        output.table(title, columns, ([row[c] for c in columns] for row in rows))


def _last(event: dict | None) -> None:
    if event is None:
        output.details("Last provisioning", [("last provisioning", "none yet: no identity provider has changed anything")])
        return
    resource = " ".join(output.shown(v) for v in (event["resource_type"], event["resource_name"] or event["resource_id"]))
    output.details("Last provisioning", [("last provisioning", event["at"]), ("action", event["action"]),
                                         ("by", event["actor"]), ("resource", resource), ("event", event["id"])])


def _webhooks(endpoints: list[dict]) -> None:
    if endpoints:
        output.table("Webhook endpoints", ("id", "url", "status", "failing since", "waiting deliveries"), (
            [w["id"], w["url"], _marked(w["status"], w["status"] == "disabled"),
             output.when(w["failing_since"], "-"), w["pending_deliveries"]] for w in endpoints
        ))


def _problems(problems: list[str]) -> None:
    if problems:
        output.table("Problems", ("#", "problem"), ([n, output.Attention(p)] for n, p in enumerate(problems, 1)))
    else:
        output.info("No problems found.")
