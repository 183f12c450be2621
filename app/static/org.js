// Watches the organisation's sync and reloads the page when it finishes. The words of the
// counts line and the status badge come translated from the page's data- attributes, so the
// refreshed line stays in the page's language; the status itself is read from data-status.
(function () {
  const box = document.getElementById("sync");
  if (!box) return;
  const state = document.getElementById("sync-state");
  const progress = document.getElementById("sync-progress");
  const bar = document.getElementById("sync-bar");
  const words = box.dataset;
  const label = (status) => words["label" + status.charAt(0).toUpperCase() + status.slice(1)] || status.replace(/_/g, " ");
  let wasRunning = state && (state.dataset.status === "running" || state.dataset.status === "waiting");
  async function poll() {
    try {
      const res = await fetch(box.dataset.statusUrl, { headers: { Accept: "application/json" } });
      if (!res.ok) return;
      const s = await res.json();
      if (s.status === "none") { setTimeout(poll, 1500); return; }
      const p = s.progress || {};
      state.textContent = label(s.status);
      state.dataset.status = s.status;
      state.className = "badge " + s.status;
      progress.textContent = `${p.contacts || 0} ${words.contacts || "contacts"} · ${p.invoices || 0} ${words.invoices || "invoices"} · ${p.payments || 0} ${words.payments || "payments"} · ${s.api_calls} ${words.apiCalls || "API calls"}`;
      if (bar) bar.hidden = !(s.status === "running" || s.status === "queued");
      if (s.status === "running") { wasRunning = true; setTimeout(poll, 1000); return; }
      if (wasRunning) { window.location.reload(); return; }
      setTimeout(poll, 10000);
    } catch (e) { setTimeout(poll, 5000); }
  }
  poll();
})();
