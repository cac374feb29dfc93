"""Recordings where no voice exists, on the running service: a menu offering Somali (no
espeak-ng voice) is refused at publish until its prompts and the system's phrases are
recorded, then accepted; the uploads are admin only, checked, audited and listed."""
from __future__ import annotations

import json
import shutil
import subprocess
import urllib.error
import urllib.request

import pytest

from agi.phrasebook import RECORDED_ALONE
from demo_facts import with_language

pytestmark = pytest.mark.telephony


def put_audio(kc, path: str, data: bytes, token: str = "demo-admin-token"):
    req = urllib.request.Request(kc.url + path, data=data, method="PUT")
    req.add_header("Authorization", f"Bearer {token}")
    req.add_header("Content-Type", "audio/wav")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def with_somali(menu: dict, ref: str | None) -> dict:
    return with_language(menu, "so", "Ku soo dhawow.", ref)


def test_a_somali_menu_is_refused_until_its_recordings_exist(kc, tmp_path):
    wav = tmp_path / "tone.wav"
    subprocess.run(["sox", "-n", "-r", "16000", "-c", "1", str(wav), "synth", "0.4", "sine", "500"],
                   check=True)
    data = wav.read_bytes()
    status, original = kc.request("GET", "/api/menus/bromma")
    assert status == 200, original
    try:
        status, body = kc.request("PUT", "/api/menus/bromma", with_somali(original["menu"], None))
        assert status == 422, body
        text = " ".join(body["problems"])
        assert "no speech synthesiser voice for language 'so'" in text
        assert "no recording for the system's phrases callback_confirmed" in text
        status, table = kc.request("GET", "/api/phrases")
        rows = {(r["key"], r["language"]): r["status"] for r in table["phrases"]}
        assert rows[("callback_confirmed", "so")] == "missing" and rows[("callback_confirmed", "sv")] == "spoken"

        # admin only, the role before the lookup; an unknown phrase or a bad file changes nothing
        assert put_audio(kc, "/api/phrases/no_such/so/recording", data, "demo-manager-token")[0] == 403
        assert kc.request("GET", "/api/phrases", token="demo-manager-token")[0] == 403
        assert put_audio(kc, "/api/phrases/no_such/so/recording", data)[0] == 404
        status, body = put_audio(kc, "/api/phrases/survey_intro/so/recording", b"%PDF-1.4 not audio")
        assert status == 422 and "WAV or MP3" in body["error"], body

        refs = []
        for key in RECORDED_ALONE:
            status, body = put_audio(kc, f"/api/phrases/{key}/so/recording?filename={key}.wav", data)
            assert status == 200 and body["recording"] == f"phrases/so/{key}", body
            refs.append(f"uploads/{body['sha256']}")
        status, table = kc.request("GET", "/api/phrases")
        assert {r["status"] for r in table["phrases"]
                if r["language"] == "so" and r["key"] in RECORDED_ALONE} == {"recorded"}
        # the phrases are recorded, the menu's own Somali prompts not yet
        status, body = kc.request("PUT", "/api/menus/bromma", with_somali(original["menu"], None))
        assert status == 422 and not any("system's phrases" in p for p in body["problems"]), body
        status, body = kc.request("PUT", "/api/menus/bromma", with_somali(original["menu"], refs[0]))
        assert status == 200, body
        assert {t for (t,) in kc.sql("select target from audit_log where action = 'phrase.record'")} \
            >= {f"{key}/so" for key in RECORDED_ALONE}
    finally:
        kc.request("PUT", "/api/menus/bromma", original["menu"])
        shutil.rmtree(kc.var / "sounds" / "phrases", ignore_errors=True)
