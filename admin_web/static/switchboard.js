// The switchboard on the agent desktop: the staff directory searched as the agent types, and
// the caller on the line transferred to a person, blind ("Transfer") or attended ("Transfer
// after asking": the agent talks to the person first and hangs up to hand the caller over).
// Everything from the server is shown with textContent (never innerHTML).
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  // The page's words in its language (admin_web/words.py `desk_words`).
  const W = JSON.parse($("desk-words").textContent);
  const fill = (text, values) => text.replace(/%\((\w+)\)s/g, (m, k) => String(values[k]));
  let timer = null, asked = 0;

  function onCall() {        // the phone contact popped on the desk, if any
    const pop = $("pop");
    if (!pop || pop.hidden || !pop.dataset.contact) return null;
    return pop.dataset.channel === "phone" ? pop.dataset.contact : null;
  }

  async function transfer(person, attended) {
    const contact = onCall();
    if (!contact) { $("dir-status").textContent = W.no_call_to_transfer; return; }
    $("dir-status").textContent = attended ? fill(W.calling_person, {name: person.name}) : W.transferring;
    const resp = await fetch("/api/contacts/" + encodeURIComponent(contact) + "/transfer", {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
      body: JSON.stringify({to: "directory:" + person.id, attended: attended})});
    let data = {};
    try { data = await resp.json(); } catch (e) { data = {error: resp.statusText}; }
    if (!resp.ok) { $("dir-status").textContent = fill(W.error, {message: data.error || resp.statusText}); return; }
    $("dir-status").textContent = attended
      ? fill(W.consulting, {name: person.name}) : fill(W.transferred_to, {name: person.name});
    $("dir-status").dataset.transfer = String(data.transfer || data.contact);
  }

  function item(person) {
    const el = document.createElement("li");
    el.className = "dir-person";
    el.dataset.person = String(person.id);
    const text = document.createElement("span");
    text.textContent = person.name + " · " + (person.unit || "–") + " · " + person.number +
      (person.available ? "" : " · " + W.not_available);
    el.append(text);
    for (const [label, attended, cls] of [[W.transfer, false, "dir-blind"],
                                          [W.transfer_attended, true, "dir-attended"]]) {
      const b = document.createElement("button");
      b.type = "button"; b.textContent = label; b.className = cls;
      b.addEventListener("click", () => transfer(person, attended));
      el.append(" ", b);
    }
    return el;
  }

  async function search() {
    const q = $("dir-q").value.trim();
    const mine = ++asked;
    if (!q) { $("dir-results").replaceChildren(); return; }
    let data;
    try {
      const resp = await fetch("/api/directory?limit=15&q=" + encodeURIComponent(q), {credentials: "same-origin"});
      if (!resp.ok) return;
      data = await resp.json();
    } catch (e) { return; }
    if (mine !== asked) return;             // an older answer: the agent typed on
    const list = $("dir-results");
    list.replaceChildren(...data.people.map(item));
    if (!data.people.length) { const none = document.createElement("li"); none.textContent = W.no_match; list.append(none); }
    list.dataset.query = q;
  }

  // Click to call: the agent's phone rings first, then the resident (through the trunk).
  $("call-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    $("call-status").textContent = W.ringing_your_phone;
    const resp = await fetch("/desk/call", {method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
      body: JSON.stringify({number: $("call-number").value})});
    let data = {};
    try { data = await resp.json(); } catch (err) { data = {error: resp.statusText}; }
    $("call-status").textContent = resp.ok ? fill(W.answer_your_phone, {number: data.calling})
                                           : fill(W.error, {message: data.error || resp.statusText});
  });

  $("dir-q").addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(search, 150); });
})();
