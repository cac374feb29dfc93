// Callers waiting too long: one rule for the wallboard's alert list and every page's header.
// A queue alerts once its longest wait passes its limit; the wait ticks here every second.
(function () {
  "use strict";
  const wait = (seconds) => {
    const s = Math.max(0, Math.round(seconds));
    return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
  };
  // the alerts (<p class="wb-alert" data-queue>) for the queues past their limit at `now`
  function alerts(queues, now, words) {
    const out = [];
    for (const q of queues) {
      if (!q.alert_seconds || q.longest_wait_since === null || q.longest_wait_since === undefined) continue;
      if (now - q.longest_wait_since < q.alert_seconds) continue;
      const p = document.createElement("p");
      p.className = "wb-alert";
      p.dataset.queue = q.name;
      p.textContent = words.too_long
        .replace("%(queue)s", q.skill_name + ", " + (q.district_name || q.district))
        .replace("%(wait)s", wait(now - q.longest_wait_since)).replace("%(limit)s", q.alert_seconds);
      out.push(p);
    }
    return out;
  }
  window.kcWaitAlerts = {alerts: alerts, wait: wait};

  // the header of every page for the supervisors and agents who watch queues
  const box = document.getElementById("wait-alerts");
  if (!box) return;
  const words = JSON.parse(box.dataset.words);
  let queues = [], offset = 0;
  const render = () => {
    const items = alerts(queues, Date.now() / 1000 + offset, words);
    box.replaceChildren(...items);
    box.hidden = items.length === 0;
  };
  const es = new EventSource("/wallboard/events?only=alerts");
  es.addEventListener("snapshot", (ev) => {
    const data = JSON.parse(ev.data);
    offset = data.sent - Date.now() / 1000;
    queues = data.queues || [];
    render();
  });
  setInterval(render, 1000);
})();
