"""/admin/users: the admin's view of the accounts and artists, with the CLI's actions.

Each account shows its role and artist; the admin can mail a password reset link (the same
link as /login/forgot, when email is set up) or remove the account, typing its email to
confirm. Removing ends its sessions and API tokens and leaves its triage history
unattributed, as ``stylewatch user remove`` does; an admin cannot remove their own account.
An artist is removed from a page that first says what goes with them (findings,
subscriptions, reference images) and asks for the name typed, as ``stylewatch artist remove``.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlencode

from aiohttp import web

from detectors.errors import DeliveryError, InputError
from monitor.build import alerts as alert_service
from monitor.interface.ids import ROUTE_ID
from monitor.interface.wording import removal_text
from monitor.web.auth import requires
from monitor.web.context import request_user, web_context
from monitor.web.password_reset import RUNTIME_KEY, reset_link
from monitor.web.rendering import error_page, render
from storage.records import ArtistRemoval
from storage.users import UserRecord


def _back(message: str) -> web.HTTPSeeOther:
    return web.HTTPSeeOther("/admin/users?" + urlencode({"message": message}))


async def _account(request: web.Request) -> UserRecord | None:
    users = web_context(request).users
    return await asyncio.to_thread(users.get_user, int(request.match_info["user_id"]))


@requires("admin")
async def accounts_page(request: web.Request) -> web.StreamResponse:
    ctx = web_context(request)
    accounts = await asyncio.to_thread(ctx.users.list_users)
    registered = await asyncio.to_thread(ctx.store.list_artists)
    context = {
        "accounts": accounts,
        "registered": registered,
        "artists": {a.id: a.name for a in registered},
        "message": request.query.get("message", "")[:300],
        "email_enabled": request.app[RUNTIME_KEY].settings.alerts.email.enabled,
    }
    return await render(request, "accounts.html", context)


@requires("admin")
async def mail_reset(request: web.Request) -> web.StreamResponse:
    account = await _account(request)
    if account is None:
        return await error_page(request, 404, "There is no such account.")
    runtime = request.app[RUNTIME_KEY]
    found = await asyncio.to_thread(web_context(request).users.credentials, account.email)
    if not runtime.settings.alerts.email.enabled or found is None:
        raise _back(
            f"Email is not set up here: set {account.email}'s password with "
            f"stylewatch user password {account.email}."
        )
    url = reset_link(request, account, found[1])
    try:
        await alert_service.send_password_reset(runtime, account.id, account.email, url)
    except DeliveryError:
        raise _back(
            f"The reset link to {account.email} could not be sent; try again later."
        ) from None
    raise _back(f"A password reset link went to {account.email}; it works for an hour.")


@requires("admin")
async def remove_account(request: web.Request) -> web.StreamResponse:
    account = await _account(request)
    user = request_user(request)
    if account is None or user is None:
        return await error_page(request, 404, "There is no such account.")
    if account.id == user.id:
        raise _back("You cannot remove your own account.")
    form = await request.post()
    if str(form.get("confirm", "")).strip().lower() != account.email:
        raise _back(f"Not removed: type {account.email} to confirm.")
    try:
        _, tokens = await asyncio.to_thread(web_context(request).users.remove_user, account.email)
    except InputError as exc:
        raise _back(f"Not removed: {exc}.") from None
    what = f" and its {tokens} API token{'s' * (tokens != 1)}" if tokens else ""
    raise _back(f"Removed {account.email}{what}; its sessions have ended.")


async def _removal(request: web.Request) -> ArtistRemoval | None:
    store = web_context(request).store
    try:
        return await asyncio.to_thread(store.artist_removal, int(request.match_info["artist_id"]))
    except InputError:
        return None


@requires("admin")
async def artist_removal_page(request: web.Request) -> web.StreamResponse:
    removal = await _removal(request)
    if removal is None:
        return await error_page(request, 404, "There is no such artist.")
    context = {
        "removal": removal,
        "what": removal_text(removal, done=False),
        "action": request.path,
    }
    return await render(request, "artist_remove.html", context)


@requires("admin")
async def remove_artist(request: web.Request) -> web.StreamResponse:
    removal = await _removal(request)
    if removal is None:
        return await error_page(request, 404, "There is no such artist.")
    form = await request.post()
    if str(form.get("confirm", "")).strip() != removal.name:
        raise _back(f"Not removed: type {removal.name} exactly to confirm.")
    store = web_context(request).store
    artist_id = int(request.match_info["artist_id"])
    done = await asyncio.to_thread(lambda: store.artist_removal(artist_id, remove=True))
    said = removal_text(done, done=True)
    raise _back(said[:1].upper() + said[1:] + ".")


def add_account_pages(app: web.Application) -> None:
    app.router.add_get("/admin/users", accounts_page)
    app.router.add_post(f"/admin/users/{{user_id:{ROUTE_ID}}}/reset", mail_reset)
    app.router.add_post(f"/admin/users/{{user_id:{ROUTE_ID}}}/remove", remove_account)
    app.router.add_get(f"/admin/artists/{{artist_id:{ROUTE_ID}}}/remove", artist_removal_page)
    app.router.add_post(f"/admin/artists/{{artist_id:{ROUTE_ID}}}/remove", remove_artist)
