"""`fdawatch digest`, `fdawatch serve` and `fdawatch evidence`: the clinic owner's view.

Like `alerts`, the commands only need `ctx.obj` to provide `settings`, `history()`,
`sources()` and `now()` (`monitor.cli.app.App`), so they can be tested and registered alone.
One vocabulary: `--dir` is the site folder (`digest` writes it, `serve` serves it); `--out` is
always a file (`evidence`, `alerts preview`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click
from sqlmodel import Session

from monitor.cli.app import App, parse_since, sources_for_rendering
from monitor.config import Settings
from monitor.errors import CommandError

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from monitor.review.server import AppServer

LOOPBACK = "127.0.0.1"


_UNITS = {"h": "hour", "d": "day", "w": "week"}


def window_title(since: str) -> str:
    """`7d` → `the last 7 days`; an ISO date gives "" (the site then prints the dates)."""
    count, unit = since[:-1], since[-1:]
    if not count.isdigit() or unit not in _UNITS:
        return ""
    return f"the last {count} {_UNITS[unit]}{'s' if int(count) != 1 else ''}"


@click.command("digest")
@click.option(
    "--since",
    default="7d",
    show_default=True,
    help="The index lists changes detected since: 7d, 24h, 2w or an ISO date.",
)
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write the site into (default: var/site under $FDAWATCH_VAR_DIR).",
)
@click.option(
    "--out",
    "old_out",
    type=click.Path(file_okay=False, path_type=Path),
    hidden=True,
    help="The former name of --dir.",
)
@click.pass_obj
def digest_command(app: App, since: str, directory: Path | None, old_out: Path | None) -> None:
    """Write the digest site: index, one page per change and per source, Atom feed, evidence.

    The site is static and self-contained (no JavaScript, no external assets): open
    index.html from disk, run `fdawatch serve`, or copy the folder to a web server.

    Example: fdawatch digest --since 7d --dir ./var/site
    """
    from monitor.site.build import build_site

    if old_out is not None:
        click.echo("fdawatch: warning: `digest --out` is now `digest --dir`", err=True)
    now = app.now()
    cutoff = parse_since(since, now)
    assert cutoff is not None  # since has a default and parse_since rejects ""
    folder = directory or old_out or app.settings.var_dir / "site"
    engine = app.history()
    try:
        report = build_site(
            engine,
            app.settings,
            sources_for_rendering(app),
            folder,
            since=cutoff,
            now=now,
            window=window_title(since),
        )
    except OSError as error:
        raise CommandError(
            f"cannot write the site to {folder}: {error.strerror or error}; pick another --dir"
        ) from None
    click.echo(
        f"wrote {report.change_pages} change pages, {report.source_pages} source pages, "
        f"{report.bundles} evidence bundles and feed.atom; "
        f"{report.digest.total} changes since {cutoff:%Y-%m-%d %H:%M} UTC ({report.digest.counts})"
    )
    click.echo(f"digest: {report.index}")


def site_server(
    directory: Path,
    port: int,
    host: str = LOOPBACK,
    *,
    settings: Settings | None = None,
    history: Callable[[], Engine] | None = None,
    now: Callable[[], datetime] | None = None,
) -> AppServer:
    """The web app (digest site, review pages, queue) bound to `host`:`port` (0: any free port);
    not started. Without `history` the review pages answer that there is no history."""
    from monitor.review.server import AppServer
    from monitor.review.web import create_app

    if not (directory / "index.html").is_file():
        raise CommandError(
            f"no site in {directory}: run `fdawatch digest --dir {directory}` first, or pass --dir"
        )

    def no_history() -> Engine:
        raise CommandError("no history is attached to this server")

    app = create_app(
        settings or Settings(),
        history or no_history,
        directory,
        **({"now": now} if now is not None else {}),
    )
    return AppServer(app, host, port, proxied=host == LOOPBACK)


def serve_in_thread(
    directory: Path,
    port: int = 0,
    *,
    settings: Settings | None = None,
    history: Callable[[], Engine] | None = None,
    now: Callable[[], datetime] | None = None,
) -> tuple[AppServer, str]:
    """Start `site_server` in a daemon thread; return it and its base URL (tests use this)."""
    from monitor.review.server import serve_in_thread as start

    server = start(site_server(directory, port, settings=settings, history=history, now=now))
    return server, server.url


@click.command("serve")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8000,
    show_default=True,
    help="Port to listen on.",
)
@click.option(
    "--host",
    default=LOOPBACK,
    show_default=True,
    help="Address to listen on; keep 127.0.0.1 behind a reverse proxy (README).",
)
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="The site folder (default: var/site under $FDAWATCH_VAR_DIR).",
)
@click.pass_obj
def serve_command(app: App, port: int, host: str, directory: Path | None) -> None:
    """Serve the digest site, review links and the review queue (/queue) until Ctrl-C.

    A web app on waitress; by default only this machine can connect (127.0.0.1): for a team,
    put a reverse proxy with TLS and logins in front (README). Review links in alert emails
    need FDAWATCH_SECRET_KEY and `[review] url`. Write the site first with `fdawatch digest`.

    Example: fdawatch serve --port 8000 --dir ./var/site
    """
    folder = directory or app.settings.var_dir / "site"
    server = site_server(folder, port, host, settings=app.settings, history=app.history)
    click.echo(f"serving {folder} and reviews at {server.url} (Ctrl-C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()


@click.command("evidence")
@click.argument("change_id", type=int)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The zip to write (default: var/evidence/change-<id>.zip).",
)
@click.pass_obj
def evidence_command(app: App, change_id: int, out: Path | None) -> None:
    """Write a change's evidence bundle: raw bodies as fetched, texts, diff, manifest.json.

    manifest.json records URLs, fetch times, HTTP status and headers and the SHA-256 of
    every file in the zip, for compliance records.

    Example: fdawatch evidence 12 --out change-12.zip
    """
    from monitor.site import evidence

    path = out or app.settings.var_dir / "evidence" / evidence.bundle_name(change_id)
    with Session(app.history()) as session:
        data = evidence.build_bundle(session, change_id)
    try:
        evidence.write_atomic(path, data)
    except OSError as error:
        raise CommandError(
            f"cannot write {path}: {error.strerror or error}; pick another --out"
        ) from None
    click.echo(str(path))
