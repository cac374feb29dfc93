// Uploads go with the CSRF token in a header, so the server can stream files up to the limit.
document.getElementById("upload")?.addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const resp = await fetch(form.action, {method: "POST", body: new FormData(form),
    headers: {"X-CSRF-Token": form.csrf_token.value}});
  const html = await resp.text();
  history.replaceState(null, "", resp.url);
  document.open(); document.write(html); document.close();
});
