"""The site as its users meet it, in Chromium, every page as every role that may open it:
Swedish first and English when chosen (a choice kept per user), with nothing of the other
language on the page, no internal codes, no raw ISO times, and 0 axe-core violations
(WCAG 2.1 AA and best practice: labels, contrast, keyboard-reachable scroll areas, table
headers, a skip link). Then a keyboard-only walk of the desk and the menu editor."""
from __future__ import annotations

import re

import pytest
from babel.messages.pofile import read_po
from playwright.sync_api import expect

from admin_web import roles
from conftest import logged_in, login
from kc import i18n
from own_agents import PASSWORD, Crew

# The module's agent: no skill, so no waiting call or e-mail of another module is offered
# when it turns ready in the keyboard walk.
CREW = Crew(__name__)
DESK = CREW.agent("desk", "bromma", {})
crew = CREW.fixture()
USERS = {"admin": ("admin", "demo-admin"), "supervisor": ("supervisor", "demo-supervisor"),
         "manager": ("manager", "demo-manager"), "agent": (DESK, PASSWORD)}
# Every page of the site (the role table's HTML routes), filled in with demo ids.
PAGES = {
    "/": "/", "/wallboard": "/wallboard", "/reports": "/reports", "/reports/fcr": "/reports/fcr",
    "/admin/org": "/admin/org", "/admin/queues/{skill}/{district}": "/admin/queues/school/bromma",
    "/admin/agents": "/admin/agents", "/admin/agents/new": "/admin/agents/new",
    "/admin/agents/{agent_id}/edit": f"/admin/agents/{DESK}/edit",
    "/admin/menus": "/admin/menus", "/admin/menus/{district}": "/admin/menus/bromma",
    "/admin/schedule": "/admin/schedule", "/admin/schedule/{district}": "/admin/schedule/bromma",
    "/admin/users": "/admin/users", "/admin/audit": "/admin/audit",
    "/admin/casework": "/admin/casework", "/admin/kb": "/admin/kb", "/admin/export": "/admin/export",
    "/admin/phrases": "/admin/phrases",
    "/desk": "/desk", "/cases": "/cases",
    "/admin/districts": "/admin/districts", "/admin/districts/new": "/admin/districts/new",
    "/admin/districts/{district}": "/admin/districts/bromma",
    "/admin/skills": "/admin/skills", "/admin/skills/{skill}": "/admin/skills/school",
    "/admin/surveys": "/admin/surveys",
}
# Pages the scripts fill in after loading: what shows they are done.
READY = {"/wallboard": "#wb-queues tbody tr", "/desk": "#after-hours[data-loaded]"}
CODES = re.compile(r"\b(on_call|logged_out|wrap_up|always_open|outside_hours|short_hours|"
                   r"resolved_first_contact|referred_eservice|visit_booked|after_hours|"
                   r"[a-z-]+@[a-z-]+(?![.\w]))\b")     # skill@district, not an e-mail address
ISO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d")
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]


def pages_of(role: str) -> list[str]:
    return [path for template, path in PAGES.items()
            if template == "/" or role in roles.area_of(template).roles]


def _messages() -> tuple[list[str], list[str]]:
    """Whole phrases only one language has: English as written, and their Swedish."""
    with i18n.catalog_path("sv").open("rb") as fp:
        catalog = read_po(fp)
    english, swedish = [], []
    for m in catalog:
        if not m.id or not m.string or "%(" in m.id or m.id == m.string:
            continue
        if " " in m.id.strip() and len(m.id) > 8:
            english.append(m.id)
        if " " in m.string.strip() and len(m.string) > 8:
            swedish.append(m.string)
    return english, swedish


ENGLISH, SWEDISH = _messages()


def _open(page, url: str, path: str) -> str:
    page.goto(url + path)
    if path in READY:
        page.wait_for_selector(READY[path], state="attached", timeout=15000)
    # the page's own words: what people recorded (marked translate="no") is theirs, any language
    return page.evaluate("""() => {
        const recorded = [...document.querySelectorAll('[translate="no"]')];
        recorded.forEach((e) => { e.dataset.display = e.style.display; e.style.display = "none"; });
        const text = document.body.innerText;
        recorded.forEach((e) => { e.style.display = e.dataset.display; });
        return text;
    }""")


def _leaks(text: str, phrases: list[str]) -> list[str]:
    return [p for p in phrases if p in text]


def _axe(page, script: str) -> list[tuple[str, str, list[str]]]:
    page.evaluate(script)
    found = page.evaluate("""async (tags) => {
        const r = await axe.run(document, {runOnly: {type: "tag", values: tags}});
        return r.violations.map(v => [v.id, v.impact, v.nodes.slice(0, 4).map(n => n.target.join(" "))]);
    }""", AXE_TAGS)
    return [tuple(v) for v in found]


@pytest.mark.parametrize("role", list(USERS))
def test_every_page_in_swedish_then_in_english_and_accessible(browser, kc, axe_script, role):
    context = browser.new_context(bypass_csp=True)      # axe-core is injected into each page
    page = context.new_page()
    login(page, kc.url, *USERS[role])
    logged_in(page)
    problems = {}
    for path in pages_of(role):
        text = _open(page, kc.url, path)
        found = {"lang": page.get_attribute("html", "lang"), "english": _leaks(text, ENGLISH),
                 "codes": sorted(set(CODES.findall(text))), "iso": ISO_TIME.findall(text),
                 "axe": _axe(page, axe_script)}
        if found != {"lang": "sv", "english": [], "codes": [], "iso": [], "axe": []}:
            problems[path] = found
    assert problems == {}

    page.goto(kc.url + "/")
    page.click("form.language button[value=en]")          # the user's own choice, kept
    page.wait_for_load_state()
    problems = {}
    for path in pages_of(role):
        text = _open(page, kc.url, path)
        found = {"lang": page.get_attribute("html", "lang"), "swedish": _leaks(text, SWEDISH)}
        if found != {"lang": "en", "swedish": []}:
            problems[path] = found
    assert problems == {}
    context.close()

    again = browser.new_context()                          # another browser: still English
    page = again.new_page()
    login(page, kc.url, *USERS[role])
    logged_in(page)
    assert page.get_attribute("html", "lang") == "en"
    page.click("form.language button[value=sv]")
    page.wait_for_load_state()
    assert page.get_attribute("html", "lang") == "sv"
    again.close()


def test_visitors_pages_and_error_pages_are_in_the_layout(browser, kc, axe_script):
    context = browser.new_context(bypass_csp=True)
    page = context.new_page()
    for path in ("/", "/login", "/kontakt"):
        text = _open(page, kc.url, path)
        assert page.get_attribute("html", "lang") == "sv" and _leaks(text, ENGLISH) == [], path
        assert _axe(page, axe_script) == [], path
    response = page.goto(kc.url + "/ingen-sadan-sida")
    assert response.status == 404
    expect(page.locator("h1")).to_have_text("Sidan finns inte")
    expect(page.locator("ul.way-on a[href^='/login']")).to_be_visible()
    assert _axe(page, axe_script) == []
    login(page, kc.url, *USERS["agent"])
    page.wait_for_url(f"{kc.url}/desk")                     # an agent starts at the desk
    response = page.goto(kc.url + "/admin/users")
    assert response.status == 403
    expect(page.locator("h1")).to_have_text("Du får inte öppna den här sidan")
    expect(page.locator("main")).to_contain_text("Den här sidan är inte för din roll (handläggare).")
    page.click("text=Till din startsida")
    page.wait_for_url(f"{kc.url}/desk")
    context.close()


@pytest.mark.parametrize("role,start", [("manager", "/reports"), ("supervisor", "/wallboard"),
                                        ("admin", "/"), ("agent", "/desk")])
def test_each_role_lands_on_its_own_page(browser, kc, role, start):
    context = browser.new_context()
    page = context.new_page()
    login(page, kc.url, *USERS[role])
    page.wait_for_url(kc.url + start)
    context.close()


def _tab_to(page, selector: str, limit: int = 400) -> None:
    """Press Tab until `selector` has the focus (a keyboard user's only way there)."""
    for _ in range(limit):
        if page.evaluate("(s) => document.activeElement && document.activeElement.matches(s)", selector):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"{selector} cannot be reached with the keyboard")


def test_keyboard_only_the_desk_and_the_menu_editor(browser, kc):
    context = browser.new_context()
    page = context.new_page()
    login(page, kc.url, DESK, PASSWORD)
    page.wait_for_url(f"{kc.url}/desk")
    page.keyboard.press("Tab")                              # the first stop skips the header
    assert page.evaluate("document.activeElement.className") == "skip"
    page.keyboard.press("Enter")
    _tab_to(page, "#btn-ready")
    page.keyboard.press("Enter")
    expect(page.locator("#state")).to_have_attribute("data-state", "ready")
    _tab_to(page, "#btn-logout")
    page.keyboard.press("Enter")
    expect(page.locator("#state")).to_have_attribute("data-state", "logged_out")
    _tab_to(page, "#case-note")
    page.keyboard.type("Frågade om förskoleplats.")
    _tab_to(page, "#kb-q")
    context.close()

    context = browser.new_context()
    page = context.new_page()
    login(page, kc.url, *USERS["admin"])
    logged_in(page)
    page.goto(f"{kc.url}/admin/menus/bromma")
    _tab_to(page, "form.node-form[data-node=main] input[name=optnew_digit]")
    page.keyboard.type("6")
    _tab_to(page, "form.node-form[data-node=main] select[name=optnew_kind]")
    page.keyboard.press("End")                              # the last action: back one step
    page.keyboard.press("Home")                             # the first: submenu
    expect(page.locator("form.node-form[data-node=main] tr.new-option select[name=optnew_node]")).to_be_visible()
    _tab_to(page, "form.node-form[data-node=main] select[name=optnew_node]")
    _tab_to(page, "form.node-form[data-node=main] button[type=submit]")
    page.keyboard.press("Enter")
    expect(page.locator("#message")).to_contain_text("sparat i utkastet")
    _tab_to(page, "#discard-confirm")
    page.keyboard.press("Space")
    _tab_to(page, "#discard")
    page.keyboard.press("Enter")
    expect(page.locator("#message")).to_contain_text("Utkastet är slängt")
    context.close()
