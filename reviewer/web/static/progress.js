// The progress block of the queue page and the dashboard: polls /api/progress and updates the
// numbers in place, so a pending version's scoring moves without a reload.
"use strict";
(function () {
  const block = document.getElementById("progress");
  if (!block) return;
  // Only while a version is being scored (the counts cost a scan of the pool): every few
  // seconds until it is done, then once more for the final numbers.
  const POLL_MS = 5000;
  let pendingNow = block.dataset.pending === "yes";
  const set = (selector, value) => {
    for (const node of block.querySelectorAll(selector)) node.textContent = String(value);
  };

  function show(p) {
    for (const key of ["reviewed", "scored", "total"]) set('[data-progress="' + key + '"]', p[key]);
    const reviewed = document.getElementById("progress-reviewed");
    reviewed.max = p.total || 1;
    reviewed.value = p.reviewed;
    const pending = p.pending_version;
    pendingNow = !!pending;
    document.getElementById("progress-pending").hidden = !pending;
    if (pending) {
      for (const key of ["model_version", "scored", "total"]) set('[data-pending="' + key + '"]', pending[key]);
      const bar = document.getElementById("progress-pending-bar");
      bar.max = pending.total || 1;
      bar.value = pending.scored;
    }
  }

  async function poll() {
    if (!document.hidden) {
      try {
        const response = await fetch("/api/progress", { credentials: "same-origin", headers: { Accept: "application/json" } });
        if (response.ok) show(await response.json());
      } catch (error) {
        // The server is away for a moment: the next poll tries again.
      }
    }
    if (pendingNow) setTimeout(poll, POLL_MS);
  }
  if (pendingNow) setTimeout(poll, POLL_MS);
})();
