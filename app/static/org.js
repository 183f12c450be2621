// Watches the organisation's sync and reloads the page when it finishes.
(function () {
  const box = document.getElementById("sync");
  if (!box) return;
  const state = document.getElementById("sync-state");
  const progress = document.getElementById("sync-progress");
  const bar = document.getElementById("sync-bar");
  let wasRunning = state && (state.textContent.trim() === "running" || state.textContent.trim() === "waiting");
  async function poll() {
    try {
      const res = await fetch(box.dataset.statusUrl, { headers: { Accept: "application/json" } });
      if (!res.ok) return;
      const s = await res.json();
      if (s.status === "none") { setTimeout(poll, 1500); return; }
      const p = s.progress || {};
      state.textContent = s.status;
      state.className = "badge " + s.status;
      progress.textContent = `${p.contacts || 0} contacts · ${p.invoices || 0} invoices · ${p.payments || 0} payments · ${s.api_calls} API calls`;
      if (bar) bar.hidden = !(s.status === "running" || s.status === "queued");
      if (s.status === "running") { wasRunning = true; setTimeout(poll, 1000); return; }
      if (wasRunning) { window.location.reload(); return; }
      setTimeout(poll, 10000);
    } catch (e) { setTimeout(poll, 5000); }
  }
  poll();
})();
