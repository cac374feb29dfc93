"""The menu admin pages: in Debian's Chromium an administrator adds an option, sees the
validation error, fixes it, previews, publishes and rolls back; over HTTP two administrators
collide (the second gets a conflict with their work kept) and recordings are uploaded."""
from __future__ import annotations

import re
import subprocess
import uuid

from playwright.sync_api import expect

from web_client import Client

DISTRICT = "hasselby-vallingby"


def live_menu(kc):
    status, body = kc.request("GET", f"/api/menus/{DISTRICT}")
    assert status == 200, body
    return body


def test_admin_adds_option_sees_error_fixes_publishes_and_rolls_back(admin_page, kc):
    """In Swedish (the default), by names: the action's own fields only, a publish and a
    rollback each confirmed with a note, the versions compared in words."""
    page = admin_page
    start = live_menu(kc)
    page.goto(f"{kc.url}/admin/menus")
    page.click(f"a[href='/admin/menus/{DISTRICT}']")
    expect(page.locator("h1")).to_contain_text("Hässelby-Vällingby")

    form = page.locator("form.node-form[data-node=main]")
    new = form.locator("tr.new-option")
    expect(new.locator("select[name=optnew_skill]")).to_be_visible()       # a queue by name
    expect(new.locator("select[name=optnew_skill] option[value=school]")).to_have_text("Förskola och skola")
    new.locator("input[name=optnew_digit]").fill("x")
    new.locator("select[name=optnew_kind]").select_option("info")
    expect(new.locator("select[name=optnew_skill]")).to_be_hidden()         # fields by action
    new.locator("textarea[name=optnew_text_sv]").fill("Vi har öppet åtta till fyra.")
    new.locator("textarea[name=optnew_text_en]").fill("We are open eight to four.")
    form.locator("button[type=submit]").click()
    expect(page.locator(".problems")).to_contain_text("main: invalid digit 'x'")
    expect(page.locator("#publish")).to_be_disabled()

    form = page.locator("form.node-form[data-node=main]")
    form.locator("input[name$=_digit][value='x']").fill("4")
    form.locator("button[type=submit]").click()
    expect(page.locator("#valid")).to_be_visible()
    expect(page.locator("#draft-changes")).to_contain_text("siffran 4")     # compared in words
    expect(page.locator("#draft-changes")).to_contain_text("meddelande: ”Vi har öppet åtta till fyra.”")

    page.fill("input[name=preview]", "9 4")     # the preview drives the same engine
    page.click("#preview-form button")
    expect(page.locator("#preview")).to_contain_text("We are open eight to four.")
    expect(page.locator("#preview audio").first).to_have_attribute("src", re.compile(r"^/admin/menus/sound/"))

    page.fill("#publish-note", "öppettider i menyn")
    page.click("#publish")                      # not confirmed: the browser keeps the form
    assert live_menu(kc)["version"] == start["version"]
    page.check("#publish-confirm")
    page.click("#publish")
    expect(page.locator("#message")).to_contain_text(f"Version {start['version'] + 1} är publicerad")
    assert live_menu(kc)["menu"]["nodes"]["main"]["options"]["4"]["action"] == "info"
    assert live_menu(kc)["note"].endswith(": öppettider i menyn")

    page.check("#rollback-confirm")
    page.click("#rollback")
    expect(page.locator("#message")).to_contain_text(f"version {start['version'] + 2} är i drift")
    assert live_menu(kc)["menu"] == start["menu"]
    expect(page.locator("#versions")).to_contain_text(f"återställning till version {start['version']}")


def test_publish_rollback_and_discard_are_refused_unconfirmed(kc):
    admin = Client(kc.url)
    admin.login("admin", "demo-admin")
    _, _, page = admin.request("GET", f"/admin/menus/{DISTRICT}")
    token = _field(page, "csrf_token")
    live = live_menu(kc)["version"]
    for path, form in (("publish", {"revision": "0"}), ("discard", {}),
                       ("rollback", {"base_version": str(live)})):
        status, _, body = admin.request("POST", f"/admin/menus/{DISTRICT}/{path}",
                                        {"csrf_token": token, **form})
        assert status == 422 and "Bekräfta först" in body, (path, status)
    assert live_menu(kc)["version"] == live


def _field(body: str, name: str) -> str:
    return re.search(rf'name="{name}" value="([^"]*)"', body).group(1)


def test_second_admin_saving_a_stale_page_gets_a_conflict_and_keeps_their_work(kc):
    alice, bob = Client(kc.url), Client(kc.url)
    alice.login("admin", "demo-admin")
    bob.login("admin", "demo-admin")
    _, _, page_a = alice.request("GET", f"/admin/menus/{DISTRICT}")
    _, _, page_b = bob.request("GET", f"/admin/menus/{DISTRICT}")
    menu = live_menu(kc)["menu"]["nodes"]["main"]

    def node_form(page, prompt_sv):
        form = {"csrf_token": _field(page, "csrf_token"), "revision": _field(page, "revision"),
                "base_version": _field(page, "base_version"), "node_id": "main",
                "prompt_sv": prompt_sv, "prompt_en": menu["prompt"]["en"],
                "timeout": "5", "retries": "3", "fail_kind": "queue", "fail_target": "switchboard"}
        return form

    status, headers, _ = alice.request("POST", f"/admin/menus/{DISTRICT}/node", node_form(page_a, "Alice text."))
    assert status == 302
    status, _, body = bob.request("POST", f"/admin/menus/{DISTRICT}/node", node_form(page_b, "Bob text."))
    assert status == 409
    assert "Inte sparat" in body and "after you opened it" in body
    assert "Bob text." in body and "Alice text." in body      # both are on the page: nothing lost

    # recordings: wrong type refused with a clear message; a WAV is converted and used
    _, _, page = alice.request("GET", f"/admin/menus/{DISTRICT}")
    token = _field(page, "csrf_token")
    fields = {"revision": _field(page, "revision"), "base_version": _field(page, "base_version"),
              "target": "node:main", "lang": "sv"}
    status, _, body = _upload(alice, token, fields, "notes.txt", b"hello, not audio")
    assert status == 422 and "is not a WAV or MP3 recording" in body
    wav = subprocess.run(["sox", "-n", "-r", "22050", "-c", "1", "-t", "wav", "-", "synth", "0.3", "sine", "300"],
                         check=True, capture_output=True).stdout
    status, headers, body = _upload(alice, token, fields, "greeting.wav", wav)
    assert status == 302, body
    _, _, page = alice.request("GET", f"/admin/menus/{DISTRICT}")
    ref = re.search(r'/admin/menus/sound/(uploads/[0-9a-f]{64})\.wav', page).group(1)
    with alice.opener.open(f"{kc.url}/admin/menus/sound/{ref}.wav", timeout=10) as resp:
        audio = resp.read()
    assert resp.status == 200 and audio[:4] == b"RIFF"
    info = subprocess.run(["soxi", "-r", "-"], input=audio, capture_output=True, text=False).stdout
    assert info.strip() == b"8000"
    status, _, _ = alice.request("POST", f"/admin/menus/{DISTRICT}/discard",
                                 {"csrf_token": token, "confirm": "yes"})
    assert status == 302


def _upload(client, token, fields, filename, data):
    boundary = uuid.uuid4().hex
    parts = []
    for key, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode())
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
                 f"Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    import urllib.request
    req = urllib.request.Request(client.base + f"/admin/menus/{DISTRICT}/audio", data=b"".join(parts),
                                 method="POST", headers={
                                     "Content-Type": f"multipart/form-data; boundary={boundary}",
                                     "X-CSRF-Token": token})
    import urllib.error
    try:
        with client.opener.open(req, timeout=20) as resp:
            return resp.status, resp.headers, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read().decode()


def test_admin_shares_a_menu_in_the_browser_and_sees_who_it_affects(admin_page, kc):
    page = admin_page
    page.goto(f"{kc.url}/admin/menus/{DISTRICT}")
    page.select_option("#menu-of", "bromma")
    page.click("#share")
    try:
        expect(page.locator("#message")).to_contain_text("hör nu menyn för Bromma")
        expect(page.locator("#shared-notice")).to_contain_text("spelar menyn för Bromma")
        expect(page.locator("form.node-form")).to_have_count(0)    # nothing of its own to edit
        page.goto(f"{kc.url}/admin/menus")
        expect(page.locator(f"td.menu-share[data-district={DISTRICT}]")).to_contain_text(
            "spelar menyn för Bromma")
        expect(page.locator("td.menu-share[data-district=bromma]")).to_contain_text(
            "spelas också för Hässelby-Vällingby")
        page.goto(f"{kc.url}/admin/menus/bromma")
        expect(page.locator("#shared-with")).to_contain_text("spelas också för Hässelby-Vällingby")
        # no chains: a district that plays another's menu is not offered (the API refuses it)
        expect(page.locator(f"#menu-of option[value={DISTRICT}]")).to_have_count(0)
    finally:
        page.goto(f"{kc.url}/admin/menus/{DISTRICT}")
        page.select_option("#menu-of", "")
        page.click("#share")
        expect(page.locator("#message")).to_contain_text("spelar sin egen meny igen")
    expect(page.locator("form.node-form").first).to_be_visible()
