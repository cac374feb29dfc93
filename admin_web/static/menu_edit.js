// The menu editor: each action shows only its own fields; a node's prompt can be written from
// the labels of its digits; uploads go with the CSRF token in a header (streamed up to the limit).
(function () {
  "use strict";
  function showFields(action) {
    const kind = action.querySelector("select.kind").value;
    action.querySelectorAll(".fields").forEach((f) => {
      f.hidden = !f.dataset.kinds.split(" ").includes(kind);
    });
  }
  document.querySelectorAll("[data-action]").forEach((action) => {
    showFields(action);
    action.querySelector("select.kind").addEventListener("change", () => showFields(action));
  });

  document.querySelectorAll("form.node-form").forEach((form) => {
    const button = form.querySelector("button.suggest");
    if (!button) return;
    button.hidden = false;
    button.addEventListener("click", () => {
      form.querySelectorAll("textarea[name^=prompt_]").forEach((prompt) => {
        const lang = prompt.dataset.lang;
        const lines = [];
        form.querySelectorAll("tr.option, tr.new-option").forEach((row) => {
          const digit = row.querySelector("input.digit").value.trim();
          const label = row.querySelector('input.label[data-lang="' + lang + '"]');
          const removed = row.querySelector("input[type=checkbox][name$=_delete]");
          if (!digit || !label || !label.value.trim() || (removed && removed.checked)) return;
          lines.push(prompt.dataset.line.replace("{label}", label.value.trim()).replace("{digit}", digit));
        });
        if (lines.length) prompt.value = lines.join(" ");
      });
    });
  });

  document.getElementById("upload")?.addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    const resp = await fetch(form.action, {method: "POST", body: new FormData(form),
      headers: {"X-CSRF-Token": form.csrf_token.value}});
    const html = await resp.text();
    history.replaceState(null, "", resp.url);
    document.open(); document.write(html); document.close();
  });
})();
