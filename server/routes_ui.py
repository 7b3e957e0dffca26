"""The dashboard: server-rendered pages under `/ui`, their assets, and the charts' data.

Every page is HTML rendered from the store by Jinja2, with one small script
(`static/app.js`) that draws charts as SVG (no WebGL: headless Chromium has none) and
refreshes panels in place every 15 s. Everything a page loads comes from this server,
and the Content-Security-Policy says so: scripts, styles, images and fetches from 'self'
only, no inline script or style. A finding's Evidently report (which does use inline
script) is served in a sandboxed frame with a policy of its own.

Auth: see `ui_auth` (a key entered once into the login form, kept in an HttpOnly,
SameSite=Strict cookie; 401 and 403 pages).
"""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from inferloop.alerts import SilenceExpired, UnknownSilence, add_silence, expire_stored_silence
from inferloop.store.findings import finding_report_path
from inferloop.store.lineage import UnknownLineageSubject, lineage_of

from . import ui_drift, ui_views
from .auth import AuthRefused, Scope, authorize
from .ui_auth import COOKIE, COOKIE_PATH, UiRefusal, ui_principal

__all__ = ["CSP", "REFRESH_S", "router"]

_HERE = Path(__file__).parent
STATIC_DIR = _HERE / "static"
_STATIC_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; frame-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
"""Every page's policy: nothing inline, nothing from another origin."""
REPORT_CSP = (
    "sandbox allow-scripts; default-src 'none'; script-src 'unsafe-inline'; "
    "style-src 'unsafe-inline'; img-src data:; font-src data:; frame-ancestors 'self'"
)
"""An Evidently report runs its own inline script, in an opaque origin: it can read no
cookie and call nothing, and loads nothing from elsewhere."""
REFRESH_S = 15
_SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    # Not no-referrer: with it Chromium sends `Origin: null` on form posts, which the silence
    # forms check.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

router = APIRouter(include_in_schema=False)
# Autoescaped: Starlette turns it on for .html templates.
templates = Jinja2Templates(directory=str(_HERE / "templates"))


def _utc(ns: int | float | None) -> str:
    if ns is None:
        return "—"
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _num(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.2%}"


templates.env.filters.update(utc=_utc, num=_num, pct=_pct)


def _asset_versions() -> dict[str, str]:
    """name → short content hash, appended to asset URLs so a new release is refetched."""
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        for path in STATIC_DIR.iterdir()
        if path.suffix in _STATIC_TYPES
    }


_ASSETS = _asset_versions()


def _render(request: Request, name: str, context: dict[str, Any], *, status: int = 200) -> Response:
    base = {
        "assets": _ASSETS,
        "path": request.url.path,
        "ranges": list(ui_views.RANGES),
        "refresh_s": REFRESH_S,
    }
    return templates.TemplateResponse(
        request, name, base | context, status_code=status, headers=_SECURITY_HEADERS
    )


def _refusal_page(request: Request, refusal: UiRefusal) -> Response:
    names = {401: "401.html", 403: "403.html"}
    context = {"detail": refusal.detail, "next": request.url.path, "status": refusal.status}
    return _render(request, names.get(refusal.status, "error.html"), context, status=refusal.status)


def _not_found(request: Request, what: str) -> Response:
    return _render(request, "404.html", {"what": what}, status=404)


def _range_or_400(request: Request):
    try:
        return ui_views.resolve_range(request.query_params.get("range"), time.time())
    except ValueError as error:
        raise UiRefusal(400, str(error)) from None


def _page(request: Request, build) -> Response:
    """Authorize for `read`, then render what `build(connection)` returns."""
    try:
        ui_principal(request)
        with request.app.state.inferloop.engine.connect() as connection:
            return build(connection)
    except UiRefusal as refusal:
        return _refusal_page(request, refusal)


@router.get("/favicon.ico")
def favicon() -> Response:
    return FileResponse(STATIC_DIR / "favicon.svg", media_type="image/svg+xml")


@router.get("/ui/static/{name}")
def static_asset(name: str) -> Response:
    """The dashboard's own files; only names in the folder, never a path."""
    path = STATIC_DIR / name
    if name not in _ASSETS or path.parent != STATIC_DIR:
        return Response(status_code=404)
    return FileResponse(
        path,
        media_type=_STATIC_TYPES[path.suffix],
        headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"},
    )


@router.get("/ui")
def ui_root() -> Response:
    return RedirectResponse("/ui/", status_code=308)


@router.get("/ui/")
def overview(request: Request) -> Response:
    def build(connection):
        window = _range_or_400(request)
        data = ui_views.overview_page(connection, window)
        return _render(request, "overview.html", {"window": window, **data})

    return _page(request, build)


@router.get("/ui/models/{model}")
def model_detail(request: Request, model: str) -> Response:
    def build(connection):
        window = _range_or_400(request)
        data = ui_views.model_page(connection, model, window)
        if data is None:
            return _not_found(request, f"no model {model!r}: it has no events and no versions")
        percentile = request.query_params.get("p", "p95")
        if percentile not in ("p50", "p95", "p99"):
            percentile = "p95"
        series_url = f"/ui/data/models/{quote(model, safe='')}/series?range={window.name}"
        context = {"window": window, "percentile": percentile, "series_url": series_url}
        context["drift"] = ui_drift.drift_heatmap_view(
            connection,
            model,
            start_s=window.start_s,
            end_s=window.end_s,
            range_name=window.name,
            utc=_utc,
        )
        return _render(request, "model.html", context | data)

    return _page(request, build)


@router.get("/ui/data/models/{model}/series")
def model_series_data(request: Request, model: str) -> Response:
    """The model page's chart data as columns (what its script fetches and refreshes)."""
    try:
        ui_principal(request)
        window = _range_or_400(request)
        with request.app.state.inferloop.engine.connect() as connection:
            data = ui_views.model_series(connection, model, window)
    except UiRefusal as refusal:
        return JSONResponse({"detail": refusal.detail}, status_code=refusal.status)
    return JSONResponse(data, headers={"Cache-Control": "no-store"})


@router.get("/ui/findings")
def findings(request: Request) -> Response:
    def build(connection):
        show_all = request.query_params.get("status") == "all"
        return _render(
            request, "findings.html", ui_views.findings_list_page(connection, show_all=show_all)
        )

    return _page(request, build)


@router.get("/ui/findings/{finding_id}")
def finding_detail(request: Request, finding_id: int) -> Response:
    def build(connection):
        data = ui_views.finding_page(connection, finding_id)
        if data is None:
            return _not_found(request, f"no finding {finding_id}")
        return _render(request, "finding.html", data)

    return _page(request, build)


@router.get("/ui/findings/{finding_id}/report")
def finding_report(request: Request, finding_id: int) -> Response:
    """The finding's Evidently report, for the sandboxed frame of the finding page."""

    def build(connection):
        path = finding_report_path(connection, finding_id)
        if not path or not Path(path).is_file():
            return _not_found(request, f"finding {finding_id} has no report")
        return FileResponse(
            path,
            media_type="text/html",
            headers={"Content-Security-Policy": REPORT_CSP, "X-Content-Type-Options": "nosniff"},
        )

    return _page(request, build)


@router.get("/ui/alerts")
def alerts(request: Request) -> Response:
    def build(connection):
        return _render(request, "alerts.html", ui_views.alerts_page(connection, time.time_ns()))

    return _page(request, build)


@router.post("/ui/alerts/silences")
async def create_silence(request: Request) -> Response:
    """The alerts page's form: a silence for the matchers, from now for the duration."""
    form = await _form(request)
    matchers = [m.strip() for m in form.get("matchers", "").splitlines() if m.strip()]

    def write(connection, now_ns: int) -> None:
        add_silence(
            connection,
            matchers,
            now_ns=now_ns,
            duration=form.get("duration") or None,
            comment=form.get("comment", ""),
            created_by=form.get("created_by", ""),
        )

    return _silence_write(request, write)


@router.post("/ui/alerts/silences/{silence_id}/expire")
def expire_silence(request: Request, silence_id: str) -> Response:
    def write(connection, now_ns: int) -> None:
        expire_stored_silence(connection, silence_id, now_ns=now_ns)

    return _silence_write(request, write)


async def _form(request: Request) -> dict[str, str]:
    """An urlencoded form body, each field's first value."""
    fields = parse_qs((await request.body()).decode("utf-8", "replace"))
    return {name: values[0] for name, values in fields.items()}


def _silence_write(request: Request, write) -> Response:
    """A write from the alerts page: the `admin` scope, and only from this site's own pages
    (the SameSite=Strict cookie already keeps other sites out; the Origin check also
    covers a browser that sends no cookie because auth is off)."""
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
        return _refusal_page(request, UiRefusal(403, "a silence is made from this server's pages"))
    try:
        ui_principal(request, Scope.ADMIN)
        now_ns = time.time_ns()
        with request.app.state.inferloop.engine.begin() as connection:
            write(connection, now_ns)
    except UiRefusal as refusal:
        return _refusal_page(request, refusal)
    except (ValueError, UnknownSilence, SilenceExpired) as error:  # the message says what
        with request.app.state.inferloop.engine.connect() as connection:
            data = ui_views.alerts_page(connection, time.time_ns())
        return _render(request, "alerts.html", data | {"error": str(error)}, status=422)
    return RedirectResponse("/ui/alerts", status_code=303)


@router.get("/ui/feedback/{model}")
def feedback(request: Request, model: str) -> Response:
    def build(connection):
        data = ui_views.feedback_page(connection, model)
        if data is None:
            return _not_found(request, f"no model {model!r}: it has no events and no versions")
        return _render(request, "feedback.html", data)

    return _page(request, build)


@router.get("/ui/lineage/{model}/{version}")
def lineage(request: Request, model: str, version: int) -> Response:
    def build(connection):
        try:
            chain = lineage_of(connection, model=model, version=version)
        except UnknownLineageSubject as error:
            return _not_found(request, str(error))
        return _render(
            request,
            "lineage.html",
            {"model": model, "version": version, "lineage": chain.to_dict()},
        )

    return _page(request, build)


@router.get("/ui/login")
def login_form(request: Request) -> Response:
    return _render(request, "login.html", {"next": _safe_next(request.query_params.get("next"))})


@router.post("/ui/login")
async def login(request: Request) -> Response:
    """Check the form's key for `read`, then keep it in the HttpOnly cookie."""
    form = await _form(request)
    key = form.get("key", "").strip()
    target = _safe_next(form.get("next"))
    state = request.app.state.inferloop
    try:
        authorize(state.settings, state.engine, key or None, Scope.READ)
    except AuthRefused as refused:
        context = {"next": target, "error": refused.detail}
        return _render(request, "login.html", context, status=refused.status)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE,
        key,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path=COOKIE_PATH,
    )
    return response


@router.post("/ui/logout")
def logout() -> Response:
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict")
    return response


def _safe_next(target: str | None) -> str:
    """Only a dashboard path: a login must not redirect anywhere else."""
    if target and target.startswith("/ui/") and not target.startswith("//"):
        return target
    return "/ui/"
