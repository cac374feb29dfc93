// The agent desktop: WebSocket screen pop, state buttons, case form, knowledge base.
// Everything from the server is shown with textContent (never innerHTML).
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const categories = JSON.parse($("categories-data").textContent);
  // The page's words in its language (admin_web/desk.py `desk_words`): texts and codes' names.
  const W = JSON.parse($("desk-words").textContent);
  const word = (code) => (code && W.codes[code]) || code || "–";
  const fill = (text, values) => text.replace(/%\((\w+)\)s/g, (m, k) => String(values[k]));
  const zone = {timeZone: "Europe/Stockholm"};
  const dayKey = (d) => d.toLocaleDateString("sv-SE", zone);
  function when(iso) {          // "i dag 14:05", "i går 09:12", "12 mars 14:05"
    if (!iso) return "–";
    const d = new Date(iso);
    if (isNaN(d)) return iso;
    const clock = d.toLocaleTimeString("sv-SE", {...zone, hour: "2-digit", minute: "2-digit"});
    const today = new Date();
    const yesterday = new Date(today.getTime() - 86400000);
    if (dayKey(d) === dayKey(today)) return fill(W.today, {time: clock});
    if (dayKey(d) === dayKey(yesterday)) return fill(W.yesterday, {time: clock});
    return d.toLocaleDateString(W.lang, {...zone, day: "numeric", month: "long"}) + " " + clock;
  }
  let current = null;           // the popped contact

  async function post(url, body) {
    const resp = await fetch(url, {method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf}, body: JSON.stringify(body)});
    let data = null;
    try { data = await resp.json(); } catch (e) { data = {error: resp.statusText}; }
    if (!resp.ok) throw new Error((data && data.error) || resp.statusText);
    return data;
  }

  function showState(msg) {
    $("state").textContent = word(msg.state);
    $("state").dataset.state = msg.state;
    $("state-reason").textContent = (msg.reason && W.reasons[msg.reason]) || msg.reason || "";
    $("state-pending").textContent = msg.pending ? "(" + fill(W.then, {state: word(msg.pending)}) + ")" : "";
  }

  async function setState(state) {
    $("state-error").textContent = "";
    const body = {state: state};
    if (state === "paused") body.reason = $("pause-reason").value;
    try { showState(await post("/desk/state", body)); } catch (e) { $("state-error").textContent = e.message; }
  }
  $("btn-ready").addEventListener("click", () => setState("ready"));
  $("btn-pause").addEventListener("click", () => setState("paused"));
  $("btn-logout").addEventListener("click", () => setState("logged_out"));

  function fillSubcategories(catId, selected) {
    const sub = $("case-subcategory");
    sub.replaceChildren(new Option("–", ""));
    const cat = categories.find((c) => String(c.id) === String(catId));
    if (!cat) return;
    for (const child of cat.children) sub.add(new Option(child.name, child.id, false, String(child.id) === String(selected)));
  }
  $("case-category").addEventListener("change", (e) => { fillSubcategories(e.target.value); suggest(); });

  function outcomeChanged() {
    const v = document.querySelector('input[name="outcome"]:checked').value;
    $("forward-fields").hidden = v !== "forwarded";
    $("eservice-fields").hidden = v !== "referred_eservice";
  }
  document.querySelectorAll('input[name="outcome"]').forEach((r) => r.addEventListener("change", outcomeChanged));

  function selectContact(contactId, categoryId, label) {
    $("case-form").reset();
    outcomeChanged();
    $("case-contact").value = contactId;
    $("case-contact-label").textContent = label || ("#" + contactId);
    $("case-category").value = categoryId || "";
    fillSubcategories(categoryId);
    $("case-status").textContent = "";
  }

  function li(text) { const el = document.createElement("li"); el.textContent = text; return el; }

  function showKb(list, articles) {
    list.replaceChildren();
    for (const a of articles) {
      const el = document.createElement("li");
      const q = document.createElement("strong"); q.textContent = a.question;
      const p = document.createElement("p"); p.textContent = a.answer;
      el.append(q, p); list.append(el);
    }
    if (!articles.length) list.append(li(W.no_articles));
  }

  async function suggest() {
    const q = $("kb-q").value.trim();
    const cat = $("case-category").value;
    const url = "/desk/kb?" + new URLSearchParams({q: q, category: q ? "" : cat});
    const resp = await fetch(url, {credentials: "same-origin"});
    if (resp.ok) showKb($("kb-results"), (await resp.json()).articles);
  }
  let kbTimer = null;
  $("kb-q").addEventListener("input", () => { clearTimeout(kbTimer); kbTimer = setTimeout(suggest, 250); });

  function pop(msg) {
    current = msg;
    $("pop").hidden = false;
    $("pop").dataset.at = String(Date.now());
    $("pop").dataset.contact = String(msg.contact_id);
    $("pop").dataset.channel = msg.channel || "";          // the code (the switchboard reads it)
    $("pop-channel").textContent = "(" + word(msg.channel) + ")";
    $("pop-confidential").hidden = !msg.confidential;
    $("pop-caller").textContent = (msg.caller || W.unknown_number) + (msg.caller_name ? " – " + msg.caller_name : "");
    $("pop-district").textContent = msg.district_name || msg.district || "–";
    $("pop-language").textContent = msg.language || "–";
    $("pop-menu").textContent = (msg.menu_path || []).join(" → ") || "–";
    $("pop-matter").textContent = msg.matter || "–";
    $("pop-wait").textContent = msg.wait_seconds == null ? "–" : Math.round(msg.wait_seconds) + " s";
    $("pop-history-days").textContent = msg.history_days;
    const hist = $("pop-history");
    hist.replaceChildren();
    for (const h of msg.history) {
      hist.append(li(when(h.started_at) + " · " + word(h.channel) + " · " + (h.outcome ? word(h.outcome) : W.ongoing) +
        (h.redacted ? " · " + W.confidential : (h.category ? " · " + h.category : "") + (h.case_outcome ? " · " + word(h.case_outcome) : ""))));
    }
    if (!msg.history.length) hist.append(li(W.no_history));
    const box = $("pop-messages");
    box.replaceChildren();
    for (const m of msg.messages) {
      const h = document.createElement("h3");
      h.textContent = (m.direction === "in" ? fill(W.from, {who: m.from_addr}) : fill(W.reply_to, {who: m.to_addr})) + ": " + (m.subject || "");
      const pre = document.createElement("pre"); pre.className = "mail"; pre.textContent = m.body || "";
      box.append(h, pre);
      if ((m.attachments || []).length) {
        const files = document.createElement("ul"); files.className = "attachments";
        for (const a of m.attachments) {
          const link = document.createElement("a");
          link.href = "/desk/attachments/" + encodeURIComponent(a.id);
          link.textContent = a.filename + " (" + Math.max(1, Math.round(a.size / 1024)) + " kB)";
          link.setAttribute("download", a.filename);
          const item = document.createElement("li"); item.append(link); files.append(item);
        }
        box.append(files);
      }
    }
    const isTask = msg.channel === "email" || msg.channel === "web";
    $("reply-box").hidden = !isTask;
    $("reply").value = "";
    selectContact(msg.contact_id, msg.prefill.category_id,
      "#" + msg.contact_id + " " + (msg.caller || "") + " (" + word(msg.channel) + ")");
    showKb($("kb-results"), msg.kb);
  }

  $("case-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const data = Object.fromEntries(new FormData(e.target).entries());
    if (current && String(current.contact_id) === data.contact_id && !$("reply-box").hidden) data.reply = $("reply").value;
    $("case-status").textContent = W.saving;
    try {
      const res = await post("/desk/cases", data);
      $("case-status").textContent = fill(W.case_saved, {id: res.case_id});
      $("case-status").dataset.caseId = res.case_id;
      $("pop").hidden = true;
      document.querySelectorAll('.todo-item[data-contact="' + data.contact_id + '"]').forEach((b) => b.parentElement.remove());
      current = null;
    } catch (err) { $("case-status").textContent = fill(W.error, {message: err.message}); }
  });

  $("btn-handback").addEventListener("click", async () => {
    if (!current) return;
    try { await post("/desk/tasks/" + current.contact_id + "/back", {}); $("pop").hidden = true; current = null; }
    catch (err) { $("case-status").textContent = fill(W.error, {message: err.message}); }
  });

  document.querySelectorAll(".todo-item").forEach((b) => b.addEventListener("click", () => {
    const cat = categories.find((c) => c.skill === b.dataset.skill);
    selectContact(b.dataset.contact, cat ? cat.id : "", b.textContent);
  }));

  $("manual-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const data = Object.fromEntries(new FormData(e.target).entries());
    try {
      const res = await post("/desk/manual", data);
      $("manual-status").textContent = fill(W.registered, {contact: res.contact_id, id: res.case_id});
      e.target.reset();
    } catch (err) { $("manual-status").textContent = fill(W.error, {message: err.message}); }
  });

  function connect() {
    const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/desk/ws");
    ws.onopen = () => { $("ws-status").textContent = W.connected; $("ws-status").dataset.connected = "1"; };
    ws.onmessage = (ev) => {
      const msg = JSON.parse(ev.data);
      if (msg.type === "state") showState(msg);
      else if (msg.type === "pop") pop(msg);
    };
    ws.onclose = () => { $("ws-status").textContent = W.reconnecting; $("ws-status").dataset.connected = "";
      setTimeout(connect, 2000); };
    setInterval(() => { if (ws.readyState === 1) ws.send("ping"); }, 25000);
  }
  // After-hours requests of the agent's district, due now (voice messages play in the browser).
  function afterHoursItem(r) {
    const el = document.createElement("li");
    el.className = "after-hours-item";
    el.dataset.request = String(r.id);
    el.dataset.contact = String(r.contact_id);
    const what = document.createElement("span");
    what.className = "ah-text";
    what.textContent = word(r.kind) + " · " + fill(W.call, {number: r.callback_number || W.unknown_number}) +
      " · " + fill(W.left, {when: when(r.created_at)}) + (r.language && r.language !== "sv" ? " · " + fill(W.language, {language: r.language}) : "");
    el.append(what);
    if (r.recording_url) {
      const audio = document.createElement("audio");
      audio.controls = true; audio.preload = "metadata"; audio.src = r.recording_url;
      el.append(" ", audio);
    }
    const btn = document.createElement("button");
    btn.type = "button"; btn.className = "ah-done"; btn.textContent = W.done_register;
    btn.addEventListener("click", async () => {
      btn.disabled = true;
      try {
        const res = await post("/desk/after-hours/" + r.id + "/done", {});
        el.remove();
        if (!$("after-hours").children.length) $("after-hours").append(li(W.none));
        selectContact(res.contact_id, res.category_id,
          "#" + res.contact_id + " " + (res.caller || "") + " (" + word(res.channel) + ", " + W.after_closing + ")");
        $("after-hours-status").textContent = W.marked_done;
      } catch (err) { btn.disabled = false; $("after-hours-status").textContent = fill(W.error, {message: err.message}); }
    });
    el.append(" ", btn);
    return el;
  }
  async function loadAfterHours() {
    let data;
    try {
      const resp = await fetch("/desk/after-hours", {credentials: "same-origin"});
      if (!resp.ok) return;
      data = await resp.json();
    } catch (e) { return; }
    const list = $("after-hours");
    const playing = [...list.querySelectorAll("audio")].some((a) => !a.paused);
    if (playing) return;                       // do not cut off a message being listened to
    list.replaceChildren(...data.requests.map(afterHoursItem));
    if (!data.requests.length) list.append(li(W.none));
    list.dataset.loaded = "1";
  }
  outcomeChanged();
  connect();
  loadAfterHours();
  setInterval(loadAfterHours, 60000);
})();
