import os
import sys
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kc_instance import KcInstance, running_instance  # noqa: E402
from own_agents import password_of  # noqa: E402

# Property tests: 100 examples each by default (Hypothesis's own default; the fast suite stays
# fast), 300 in `make test`'s whole run (`--hypothesis-profile=thorough`). A failure found
# either way is kept in .hypothesis/ and replayed first next time.
hypothesis_settings.register_profile("suite", max_examples=100)
hypothesis_settings.register_profile("thorough", max_examples=300)
hypothesis_settings.load_profile("suite")


def pytest_collection_modifyitems(config, items):
    """Tests marked `serial` (the API fuzz: its generated cases share one test id, and a
    pytest-xdist worker runs only the first of them) are skipped on a worker, saying so;
    `make test` runs them in a run of their own.

    `KC_ASTERISK=16` (make test's smoke run) on a machine without Asterisk 16 (a release
    that ships a newer one, where 16 cannot be installed): skipped, saying why. Asterisk 22,
    the default, is never skipped for being missing: make test installs it."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        serial = pytest.mark.skip(reason="marked serial: run without pytest-xdist (-n)")
        for item in items:
            if item.get_closest_marker("serial"):
                item.add_marker(serial)
    from pbx.runtime import RuntimeMissing, runtime_for
    from kc.settings import Settings

    settings = Settings.from_env()
    if settings.asterisk != "16":
        return
    try:
        runtime_for(settings)
    except RuntimeMissing as exc:
        skip = pytest.mark.skip(reason=str(exc))
        for item in items:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def kc() -> KcInstance:
    """One private Asterisk + service for the session (each module hires its own agents:
    `own_agents`)."""
    with running_instance() as inst:
        yield inst


CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium driven by Playwright (it cannot download its own browsers here).

    Module-scoped: Playwright's sync API keeps an event loop running in this thread while it
    is open, which would stop pytest-asyncio's tests in later modules from running theirs."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                      args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def login(page, base_url: str, username: str, password: str) -> None:
    """Log in through the real form."""
    page.goto(f"{base_url}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("main form[action='/login'] button[type=submit]")


def logged_in(page) -> None:
    """Wait until the log-in has led to the user's start page (each role has its own: an
    agent the desk, a manager the reports, a supervisor the wallboard, an admin the overview)."""
    page.wait_for_url(lambda url: "/login" not in url)


def open_desk(browser, base_url: str, agent: str, ready: str):
    """A fresh context with `agent` (a module's own, `own_agents`) logged in on /desk, once
    `ready` (a selector) shows."""
    context = browser.new_context()
    page = context.new_page()
    login(page, base_url, agent, password_of(agent))
    page.wait_for_url(f"{base_url}/desk")          # an agent starts at the desk
    page.goto(f"{base_url}/desk")
    page.wait_for_selector(ready, timeout=10000)
    return context, page


AXE_VERSION = "4.12.1"
AXE_CACHE = Path("/var/cache/kommuncentral") / f"axe-core-{AXE_VERSION}"


@pytest.fixture(scope="session")
def axe_script() -> str:
    """axe-core, the accessibility checker, fetched once by its package name with npm (the
    registry npm is set up with) and kept beside the Asterisk root for every checkout."""
    target = AXE_CACHE / "axe.min.js"
    if not target.exists():
        import subprocess
        import tarfile
        import tempfile
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(["npm", "pack", f"axe-core@{AXE_VERSION}", "--pack-destination", tmp],
                           check=True, capture_output=True, timeout=300)
            with tarfile.open(next(Path(tmp).glob("axe-core-*.tgz"))) as tar:
                script = tar.extractfile("package/axe.min.js").read()
            AXE_CACHE.mkdir(parents=True, exist_ok=True)
            partial = AXE_CACHE / f".axe.min.js.{os.getpid()}"
            partial.write_bytes(script)
            partial.replace(target)
    return target.read_text(encoding="utf-8")


@pytest.fixture
def admin_page(browser, kc):
    """A fresh browser context logged in as the demo admin."""
    context = browser.new_context()
    page = context.new_page()
    login(page, kc.url, "admin", "demo-admin")
    page.wait_for_url(f"{kc.url}/")                # an administrator starts at the overview
    yield page
    context.close()


@pytest.fixture
def own_kc():
    """A private centre for one test (a test that kills or restarts parts of it)."""
    with running_instance() as inst:
        yield inst


@pytest.fixture
def workdir(tmp_path):
    return tmp_path


def registered_phone(kc, workdir, agent_id):
    """The SIP phone of a module's own agent (`own_agents`), registered, once the service has
    seen it."""
    from sipp_driver import SipPhone
    p = SipPhone(workdir, kc.sip_port, agent_id, password_of(agent_id))
    p.register()
    kc.wait_for(lambda: kc.agent(agent_id)["registered"], 10, f"{agent_id} registered")
    return p
