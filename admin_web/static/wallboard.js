// Live wallboard: snapshots arrive by Server-Sent Events; waits tick locally every second.
(function () {
  "use strict";
  const root = document.getElementById("wallboard");
  const only = root.dataset.district || "";
  let snap = null, offset = 0;
  const W = JSON.parse(document.getElementById("wallboard-words").textContent);
  const clock = () => new Date().toLocaleTimeString(W.lang === "en" ? "en-GB" : "sv-SE", {hour: "2-digit", minute: "2-digit", second: "2-digit"});

  const text = (el, value) => { el.textContent = value; return el; };
  const mk = (tag, cls) => { const e = document.createElement(tag); if (cls) e.className = cls; return e; };
  const serverNow = () => Date.now() / 1000 + offset;
  const wait = (since) => {
    if (since === null || since === undefined) return "–";
    const s = Math.max(0, Math.round(serverNow() - since));
    return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
  };
  const pct = (v) => (v === null || v === undefined) ? "–" : v.toLocaleString(W.lang === "en" ? "en-GB" : "sv-SE", {maximumFractionDigits: 0}) + " %";
  const busy = (a) => a.ringing + a.on_call + a.wrap_up;
  const loggedIn = (a) => a.ready + busy(a) + a.paused;

  function big(label, value, alert, key) {
    const d = mk("div", alert ? "wb-alert" : "");
    const b = text(mk("b"), value);
    if (key) b.dataset.key = key;
    d.append(b, text(mk("span"), label));
    return d;
  }

  function render() {
    if (!snap) return;
    document.getElementById("wb-day").textContent = snap.day;
    const grid = document.getElementById("wb-districts");
    grid.replaceChildren();
    for (const d of snap.districts) {
      if (only && d.id !== only) continue;
      const card = mk("div", "wb-card");
      card.id = "district-" + d.id;
      card.append(text(mk("h2"), d.name));
      const row = mk("div", "wb-big");
      row.append(big(W.waiting, d.waiting, d.waiting > 0, "waiting"),
                 big(W.longest, wait(d.longest_wait_since), d.waiting > 0, "longest"),
                 big(W.ready, d.agents.ready, false, "ready"),
                 big(W.busy, busy(d.agents), false, "busy"),
                 big(W.paused, d.agents.paused, false, "paused"),
                 big(W.answered, d.answered, false, "answered"),
                 big(W.abandoned, d.abandoned, false, "abandoned"),
                 big(W.service_level, pct(d.service_level), false, "service_level"),
                 big(W.uncategorised, d.uncategorised, d.uncategorised > 0, "uncategorised"));
      card.append(row);
      grid.append(card);
    }
    // a caller waiting past the queue's limit alerts the supervisors (the wait ticks here)
    document.getElementById("wb-alerts").replaceChildren(...window.kcWaitAlerts.alerts(
      snap.queues.filter((q) => !only || q.district === only), serverNow(), W));
    const body = document.querySelector("#wb-queues tbody");
    body.replaceChildren();
    for (const q of snap.queues) {
      if (only && q.district !== only) continue;
      const tr = mk("tr", q.waiting > 0 ? "waiting" : "");
      tr.id = "queue-" + q.name.replace("@", "-at-");
      tr.dataset.queue = q.name;
      const cells = [q.skill_name + ", " + (q.district_name || q.district), q.waiting, wait(q.longest_wait_since),
                     q.written_waiting, wait(q.written_longest_wait_since), q.agents.ready,
                     busy(q.agents), q.agents.paused, loggedIn(q.agents), q.answered, q.abandoned, pct(q.service_level),
                     q.uncategorised];
      const keys = ["name", "waiting", "longest", "written", "written_longest", "ready", "busy", "paused",
                    "logged_in", "answered", "abandoned", "service_level", "uncategorised"];
      cells.forEach((v, i) => { const td = text(mk(i === 0 ? "th" : "td"), v); td.dataset.key = keys[i]; tr.append(td); });
      if (q.service_level !== null && q.service_level !== undefined && q.service_level < W.goal) {
        // a queue missing its target today is seen at a glance: marked in words, not colour alone
        const cell = tr.lastChild;
        cell.classList.add("miss");
        cell.append(" ", text(mk("span", "miss-label"), "▼ " + W.under));
        tr.classList.add("misses-target");
      }
      body.append(tr);
    }
    const agents = document.querySelector("#wb-uncategorised tbody");
    agents.replaceChildren();
    for (const a of snap.agents_uncategorised || []) {
      if (only && a.agent_district !== only) continue;
      const tr = mk("tr");
      tr.dataset.agent = a.agent;
      [a.name, a.agent_district, a.answered, a.uncategorised].forEach((v, i) => {
        const td = text(mk(i === 0 ? "th" : "td"), v);
        td.dataset.key = ["agent", "district", "answered", "uncategorised"][i];
        tr.append(td);
      });
      agents.append(tr);
    }
  }

  function connect() {
    const status = document.getElementById("wb-status");
    const es = new EventSource("/wallboard/events");
    es.addEventListener("snapshot", (ev) => {
      snap = JSON.parse(ev.data);
      offset = snap.sent - Date.now() / 1000;
      if (snap.nodes_down && snap.nodes_down.length) {
        status.textContent = W.nodes_down.replace("%(nodes)s", snap.nodes_down.join(", ")) + " " + clock();
        status.className = "wb-status delayed";
      } else if (snap.records_delayed) {
        status.textContent = W.delayed.replace("%(n)s", snap.records_delayed) + " " + clock();
        status.className = "wb-status delayed";
      } else {
        status.textContent = W.live + " " + clock();
        status.className = "wb-status live";
      }
      render();
    });
    es.onerror = () => { status.textContent = W.reconnecting; status.className = "wb-status"; };
  }
  connect();
  setInterval(render, 1000);
})();
