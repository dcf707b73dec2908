"""`scim token`: generate, list, show and revoke SCIM bearer tokens."""

from typing import Annotated

import typer

from skilljar_scim.cli import clipboard, output
from skilljar_scim.cli.context import app_context
from skilljar_scim.cli.options import JsonFlag, wants_json
from skilljar_scim.domain import tokens

app = typer.Typer(help="Manage bearer tokens: provision tokens for identity providers, read tokens for consumers.",
                  no_args_is_help=True)


_WHERE = {"provision": "your identity provider", "read": "the application that reads SCIM and the events API"}

TokenArg = Annotated[str, typer.Argument(metavar="ID|NAME", help="Token id or name.")]


def _as_dict(token, key_ids=None) -> dict:
    """Return a token's --json keys (README "JSON output"); with the current `key_ids`, status
    says "unverifiable" for a token they cannot verify."""
    return {
        "id": token.id,
        "name": token.name,
        "scope": token.scope,
        "created_at": token.created_at,
        "expires_at": token.expires_at,
        "last_used_at": token.last_used_at,
        "revoked_at": token.revoked_at,
        "status": tokens.status(token, key_ids=key_ids),
        "refused_requests": token.refused_count,
        "key_id": token.key_id,
    }


@app.command()
def generate(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", help='A label for the connection, e.g. "Okta Production"; not one that looks like a token id.')],
    expires: Annotated[str, typer.Option("--expires", metavar="WHEN", help="30d, 90d, 12w, 1y, never, or an ISO date (UTC): a date means 00:00 UTC as that day begins.")],
    scope: Annotated[str, typer.Option("--scope", help="provision (an IdP: SCIM reads and writes) or read "
                                                        "(a consumer: SCIM reads and the events API).")] = "provision",
    copy: Annotated[bool, typer.Option("--copy", help="Also put the value on the clipboard through the terminal "
                                                      "(OSC 52; works over SSH).")] = False,
    json_flag: JsonFlag = False,
) -> None:
    """Create a token and show its value once.

    The value goes to stdout on a line of its own; the notice about it goes to stderr.

    Example: scim token generate --name "Okta Production" --expires 90d
    """
    actx = app_context(ctx)
    expires_at = tokens.parse_expiry(expires)
    scope = tokens.check_scope(scope)
    keys = actx.keys()
    actx.open_store()
    made = tokens.generate(keys, name, expires_at, scope=scope)
    if wants_json(ctx, json_flag):
        fields = ("id", "name", "scope", "created_at", "expires_at")
        output.emit_json({**{k: _as_dict(made.token)[k] for k in fields}, "token": made.value})
    else:
        _show_value(made)
    if copy:
        _copy(made.value)


def _show_value(made: tokens.Generated) -> None:
    """Print the value first, alone on stdout (nothing printed after it can keep anyone from it), then the notice."""
    typer.echo(made.value)
    output.panel([f"Name: {output.shown(made.token.name)}   Id: {made.token.id}   Scope: {made.token.scope}   "
                  f"Expires: {output.when(made.token.expires_at)}",
                  f"Copy the token above into {_WHERE[made.token.scope]} now: it will not be shown again."],
                 title="New SCIM bearer token")


def _copy(value: str) -> None:
    """Send the value to the terminal's clipboard, and say whether it could be sent."""
    why_not = clipboard.copy(value)
    if why_not:
        output.info(f"Could not copy to the clipboard: {why_not}. Copy the value above.")
    else:
        output.info("Sent to your terminal's clipboard (OSC 52). If your terminal does not support it, "
                    "copy the value above.")


@app.command("list")
def list_(
    ctx: typer.Context,
    all_: Annotated[bool, typer.Option("--all", help="Include revoked tokens.")] = False,
    json_flag: JsonFlag = False,
) -> None:
    """List tokens with their status and last use, newest first.

    Example: scim token list --all
    """
    actx = app_context(ctx)
    actx.open_store()
    key_ids = actx.key_ids()
    rows = [_as_dict(t, key_ids) for t in tokens.list_tokens(include_revoked=all_)]
    if wants_json(ctx, json_flag):
        output.emit_json_list(rows)
        return
    columns = ("id", "name", "scope", "expires_at", "last_used_at", "status")  # created: in `show` and --json
    output.table("SCIM tokens", ("id", "name", "scope", "expires", "last used", "status"),
                 ([_shown(c, r[c]) for c in columns] for r in rows))


@app.command()
def show(ctx: typer.Context, ref: TokenArg, json_flag: JsonFlag = False) -> None:
    """Show one token's details (never its value).

    Example: scim token show "Okta Production"
    """
    actx = app_context(ctx)
    actx.open_store()
    data = _as_dict(tokens.find(ref), actx.key_ids())
    if wants_json(ctx, json_flag):
        output.emit_json(data)
        return
    output.details(f"Token {data['name']}", [(k, _shown(k, v)) for k, v in data.items()])


def _shown(key: str, value):
    """Say "never" for a token that never expires or was never used, "unknown" for an unrecorded key."""
    if key in ("expires_at", "last_used_at"):
        return output.when(value)
    if key == "key_id" and value is None:
        return "unknown"
    return value


@app.command()
def revoke(
    ctx: typer.Context,
    ref: TokenArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    json_flag: JsonFlag = False,
) -> None:
    """Revoke a token: the next request that uses it is refused.

    With --json it prints the revoked token (the keys of `scim token show`).

    Example: scim token revoke "Okta Production" --yes
    """
    app_context(ctx).open_store()
    token = tokens.ensure_revocable(tokens.find(ref))
    output.info(f"Token {output.quoted(token.name)} (id {token.id}, created {output.when(token.created_at)}, "
                f"status {tokens.status(token)})")
    output.confirm("Revoke it? Provisioning through it stops at once; provisioned users stay.", yes)
    revoked = tokens.revoke(token)
    if wants_json(ctx, json_flag):
        output.emit_json(_as_dict(revoked))
        return
    output.info(f"Revoked token {output.quoted(revoked.name)} ({revoked.id}).")
