"""Screenshots of the Dagster UI after the demo, taken by headless Chromium into docs/screenshots/.

    python -m localdev.screenshots [--out docs/screenshots] [--port 3111]
    bash scripts/screenshots.sh          # the same, installing chromium and playwright first when missing

Starts ``python -m localdev.demo --serve --port P`` on a fresh ``.local/dagster_home`` (the demo
recreates its runs), waits for the webserver, and takes 1400x900 PNGs of the demo asset's pages:

    asset-overview.png    Overview tab: latest materialization, row count, columns, storage (table name)
    asset-partitions.png  Partitions tab: the demo's first week, one materialized partition selected
    asset-plots.png       Overview > Metadata > Plots > Partitions: numeric metadata per partition,
                          dagster/partition_row_count among them (the demo's partitions are the last
                          week's, and the UI plots the newest 120 partition keys)
    asset-lineage.png     Lineage tab: <name>_gcs_files -> <name>

Each page must show its expected words and its PNG must be non-trivial, else one line names the page
and the command exits 1; the new PNGs replace those in --out only when every page passed (they are
always kept in .local/screenshots/). The demo (webserver and emulators) is stopped on every exit.
Needs Debian's chromium (``apt-get install -y chromium``) and the ``playwright`` Python package, which
drives it through ``executable_path`` (no browser download).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
LOCAL = REPO / ".local"
DAGSTER_HOME = LOCAL / "dagster_home"  # what localdev.demo uses
WORKDIR = LOCAL / "screenshots"  # demo log and the PNGs of the last run, passed or not
DEFAULT_OUT = REPO / "docs" / "screenshots"
PLAYWRIGHT_VERSION = "1.65.2"  # what scripts/screenshots.sh installs
WIDTH, HEIGHT = 1400, 900
MIN_BYTES = 20_000
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]
# The UI's "Join the Dagster community" dialog opens on 127.0.0.1 until this localStorage key is set.
SKIP_COMMUNITY_DIALOG = "window.localStorage.setItem('communityNux', JSON.stringify('1'));"


class ScreenshotError(Exception):
    """One line that says what went wrong."""


@dataclass(frozen=True)
class Shot:
    name: str
    path: str  # URL path and query on the webserver
    expect: tuple[str, ...]  # words the page text must contain (once prepared)
    forbid: tuple[str, ...] = ()  # words it must not contain (empty states)
    selector: str | None = None  # an element that must be on the page
    prepare: Callable[[Any], None] | None = field(default=None, compare=False)  # clicks, once `ready` shows
    ready: tuple[str, ...] = ()  # with prepare: words to wait for before it


def _fail(message: str) -> int:
    print(f"screenshots: {message}", file=sys.stderr, flush=True)
    return 1


def find_chromium(explicit: str | None) -> str | None:
    """--chromium or $CHROMIUM when given (and only that), else chromium on PATH or /usr/bin/chromium."""
    given = explicit or os.environ.get("CHROMIUM")
    for candidate in [given] if given else [shutil.which("chromium"), "/usr/bin/chromium"]:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def shots() -> list[Shot]:
    """The four pages, with names and dates read from the demo's defs.yaml."""
    from localdev.demo import DAYS
    from localdev.demo_definitions import demo_attributes

    attrs = demo_attributes()
    name = attrs["name"]
    asset = f"/assets/{attrs['key_prefix']}/{name}"
    table = f"{attrs['project_id']}.{attrs['clean_dataset_name']}.{attrs['destination_table']}"
    first = date.fromisoformat(attrs["start_date"])
    days = [f"{first + timedelta(days=i):%Y-%m-%d}" for i in range(DAYS)]
    week_end = f"{first + timedelta(days=max(DAYS, 7) - 1):%Y-%m-%d}"
    columns = tuple(column["name"] for column in attrs["schema"])
    column_types = tuple(sorted({column["type"] for column in attrs["schema"]}))

    def plots(page: Any) -> None:
        # Metadata section: Table|Plots, then (partitioned asset) Partitions|Events for the x-axis
        page.locator("button[aria-selected]", has_text="Plots").click()
        page.locator("button[aria-selected]", has_text="Partitions").click()
        page.get_by_text("dagster/partition_row_count", exact=True).first.wait_for()
        heading = page.locator("button", has_text="Metadata").first
        heading.evaluate("el => el.scrollIntoView({block: 'start'})")

    return [
        Shot("asset-overview", asset,
             expect=(name, "Latest materialization", "Row count", "Columns", *columns, *column_types, table)),
        Shot("asset-partitions",
             f"{asset}?view=partitions&partition={days[1]}&default_range=%5B{days[0]}...{week_end}%5D",
             expect=(name, f"Materialized ({DAYS})", *days, "Latest materialization", "dagster/row_count"),
             forbid=("No partition selected",)),
        Shot("asset-plots", asset, ready=(name, "Metadata", "Plots"),
             expect=(name, "dagster/partition_row_count", "dagster/row_count", "files_loaded"),
             forbid=("Asset plots are automatically generated",), selector="canvas", prepare=plots),
        Shot("asset-lineage", f"{asset}?view=lineage", expect=(f"{name}_gcs_files", name, "Upstream")),
    ]


# --- the demo server ------------------------------------------------------------------------------

def _port_answers(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _log_tail(log: Path, lines: int = 25) -> str:
    try:
        text = log.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


def start_demo(port: int, log: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "localdev.demo", "--serve", "--port", str(port)]
    # its own process group; SIGINT at its default (so Python turns it into KeyboardInterrupt and the
    # demo's cleanup runs even when this was started from a shell that ignores SIGINT)
    return subprocess.Popen(
        cmd, cwd=REPO, stdin=subprocess.DEVNULL, stdout=log.open("wb"), stderr=subprocess.STDOUT,
        start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def wait_for_webserver(proc: subprocess.Popen, port: int, log: Path, timeout: float) -> None:
    url = f"http://127.0.0.1:{port}/server_info"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ScreenshotError(f"the demo exited with code {proc.returncode} before the webserver answered "
                                  f"(log: {log})\n{_log_tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(1)
    raise ScreenshotError(f"the webserver did not answer at {url} within {timeout:.0f}s (log: {log})\n"
                          f"{_log_tail(log)}")


def _proc_stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, start time) of a live process, or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[1]), fields[19]


def _descendants(root: int) -> dict[int, str]:
    """pid -> start time of every live descendant of root (the demo puts its emulators and
    ``dagster dev`` in sessions of their own, so its process group does not reach them)."""
    children: dict[int, list[int]] = {}
    starts: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _proc_stat(int(entry.name))):
            children.setdefault(stat[0], []).append(int(entry.name))
            starts[int(entry.name)] = stat[1]
    found: dict[int, str] = {}
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop()
        if pid not in found and pid in starts:
            found[pid] = starts[pid]
            todo.extend(children.get(pid, []))
    return found


def stop_demo(proc: subprocess.Popen) -> None:
    """SIGINT to the demo's process group (its Ctrl-C: stops dagster dev, then the emulators);
    SIGTERM, then SIGKILL when it does not exit; then any descendant it left behind."""
    if proc.poll() is None:
        left = _descendants(proc.pid)
        for sig, wait in ((signal.SIGINT, 90), (signal.SIGTERM, 20), (signal.SIGKILL, 10)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                left.update(_descendants(proc.pid))
    else:
        left = {}
    stray = [pid for pid, start in left.items() if (stat := _proc_stat(pid)) and stat[1] == start]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in stray:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + 10
        while stray and time.monotonic() < deadline:
            stray = [pid for pid in stray if _proc_stat(pid) and _proc_stat(pid)[1] == left[pid]]
            time.sleep(0.2)
        if not stray:
            break


# --- the browser ----------------------------------------------------------------------------------

def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    if head[:8] != b"\x89PNG\r\n\x1a\n":
        raise ScreenshotError(f"{path.name}: not a PNG")
    return struct.unpack(">II", head[16:24])


def _page_text(page: Any) -> str:
    return page.evaluate("() => document.body ? document.body.innerText : ''")


def take(page: Any, base: str, shot: Shot, target: Path, timeout_ms: int) -> None:
    """Open one page, wait until it shows its words and no "Loading…", screenshot it, check it."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.goto(base + shot.path, wait_until="domcontentloaded")
    words = list(shot.expect)
    timed_out = ""
    shows = "ws => ws.every(w => document.body && document.body.innerText.includes(w))"
    try:
        if shot.prepare:
            page.wait_for_function(shows, arg=list(shot.ready), timeout=timeout_ms)
            shot.prepare(page)
        page.wait_for_function(shows, arg=words, timeout=timeout_ms)
        if shot.selector:
            page.locator(shot.selector).first.wait_for(state="visible", timeout=timeout_ms)
        page.wait_for_function("() => !/Loading(…|\\.\\.\\.)/.test(document.body.innerText)", timeout=timeout_ms)
    except PlaywrightTimeout as exc:
        timed_out = str(exc).splitlines()[0]  # said below, after what is missing on the page as it was
    except Exception as exc:  # a click that found nothing, a navigation that failed
        page.screenshot(path=str(target))
        raise ScreenshotError(f"{shot.name} ({shot.path}): {type(exc).__name__}: {str(exc).splitlines()[0]}") from exc
    page.wait_for_timeout(1500)  # let charts and the graph finish their transitions
    page.screenshot(path=str(target))
    text = _page_text(page)
    problems = [f"lacks {w!r}" for w in words if w not in text]
    problems += [f"shows {w!r}" for w in shot.forbid if w in text]
    problems += [f"still shows {w!r}" for w in ("Loading…", "Loading...") if w in text]
    if shot.selector and page.locator(shot.selector).count() == 0:
        problems.append(f"has no {shot.selector} element")
    size = target.stat().st_size
    if size < MIN_BYTES:
        problems.append(f"PNG is only {size} bytes")
    if _png_size(target) != (WIDTH, HEIGHT):
        problems.append(f"PNG is {_png_size(target)}, not {WIDTH}x{HEIGHT}")
    if problems and timed_out:
        problems.append(timed_out)
    if problems:
        raise ScreenshotError(f"{shot.name} ({shot.path}): page {'; '.join(problems)} (see {target})")
    print(f"  {shot.name}.png: {size // 1024} KB", flush=True)


def take_all(chromium: str, port: int, workdir: Path, timeout_ms: int) -> list[str]:
    """Screenshot every page into workdir; returns one line per failed page."""
    from playwright.sync_api import sync_playwright

    base = f"http://127.0.0.1:{port}"
    failures: list[str] = []
    with sync_playwright() as pw:
        # Playwright gives the browser a new empty profile (--user-data-dir) of its own
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_FLAGS)
        try:
            context = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT}, device_scale_factor=1,
                                          locale="en-US", timezone_id="UTC", color_scheme="light")
            context.add_init_script(SKIP_COMMUNITY_DIALOG)
            page = context.new_page()
            page.set_default_timeout(timeout_ms)
            for shot in shots():
                try:
                    take(page, base, shot, workdir / f"{shot.name}.png", timeout_ms)
                except ScreenshotError as exc:
                    failures.append(str(exc))
                    print(f"screenshots: {exc}", file=sys.stderr, flush=True)
        finally:
            browser.close()
    return failures


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localdev.screenshots", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where the PNGs go (default docs/screenshots)")
    parser.add_argument("--port", type=int, default=3111, help="dagster dev port (default 3111)")
    parser.add_argument("--chromium", help="the chromium binary (default: $CHROMIUM, then chromium on PATH)")
    parser.add_argument("--keep-instance", action="store_true",
                        help="keep .local/dagster_home (default: start it afresh, so only the demo's runs show)")
    parser.add_argument("--startup-timeout", type=float, default=600,
                        help="seconds for the demo runs and the webserver to come up (default 600)")
    parser.add_argument("--page-timeout", type=float, default=60, help="seconds per page to render (default 60)")
    args = parser.parse_args(argv)

    chromium = find_chromium(args.chromium)
    if not chromium:
        return _fail("chromium not found; install Debian's chromium: apt-get install -y chromium")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return _fail(f"the Python package playwright is missing; pip install playwright=={PLAYWRIGHT_VERSION} "
                     "(scripts/screenshots.sh installs it)")
    if _port_answers(args.port):
        return _fail(f"something already listens on 127.0.0.1:{args.port}; stop it or pass --port")

    out = args.out if args.out.is_absolute() else Path.cwd() / args.out
    WORKDIR.mkdir(parents=True, exist_ok=True)
    for old in WORKDIR.glob("*.png"):
        old.unlink()
    log = WORKDIR / "demo.log"
    if not args.keep_instance:
        shutil.rmtree(DAGSTER_HOME, ignore_errors=True)

    signal.signal(signal.SIGTERM, _interrupt)
    started = time.monotonic()
    proc: subprocess.Popen | None = None
    try:
        print(f"screenshots: starting the demo and dagster dev on 127.0.0.1:{args.port} (log: {log})", flush=True)
        proc = start_demo(args.port, log)
        wait_for_webserver(proc, args.port, log, args.startup_timeout)
        ready = time.monotonic()
        print(f"screenshots: webserver up after {ready - started:.0f}s; taking {WIDTH}x{HEIGHT} screenshots "
              f"with {chromium}", flush=True)
        failures = take_all(chromium, args.port, WORKDIR, int(args.page_timeout * 1000))
        print(f"screenshots: pages took {time.monotonic() - ready:.0f}s", flush=True)
        if proc.poll() is not None:
            failures.append(f"the demo exited with code {proc.returncode} while the pages were taken (log: {log})")
        if failures:
            return _fail(f"{len(failures)} of {len(shots())} pages failed; {out} left unchanged")
        out.mkdir(parents=True, exist_ok=True)
        for png in sorted(WORKDIR.glob("*.png")):
            shutil.copyfile(png, out / png.name)
        print(f"screenshots: wrote {', '.join(sorted(p.name for p in WORKDIR.glob('*.png')))} to {out}", flush=True)
        return 0
    except ScreenshotError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return _fail("interrupted")
    finally:
        if proc is not None:
            # a second Ctrl-C or kill must not cut the cleanup short
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            stop_demo(proc)
            print(f"screenshots: demo stopped; {time.monotonic() - started:.0f}s in all", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
