// The review screen: renders an item from JSON, takes answers by button or key,
// and fetches the next item of the same strategy without reloading the page.
// Every value from the server is put in the page with textContent, never as HTML.
"use strict";
(function () {
  const page = JSON.parse(document.getElementById("page-data").textContent);
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const $ = (id) => document.getElementById(id);
  const keyToLabel = new Map();
  for (const k of page.keys) if (k.key) keyToLabel.set(k.key, k.name);
  const METRICS = [
    ["entropy", "entropy"],
    ["mutual_info", "mutual information"],
    ["variance", "variance"],
  ];
  const TOP = 5;
  // How an answer is worded to the labeler (the API's values stay as they are).
  const shown = (label) => page.answer_names[label] || label;
  const filters = page.filters || {};
  function queueQuery() {
    const query = new URLSearchParams({ strategy: page.strategy });
    for (const key of ["predicted", "given"]) if (filters[key]) query.set(key, filters[key]);
    return query.toString();
  }
  let item = null;
  let shownAt = performance.now();
  let busy = false;
  let labeled = 0;
  // The user's recent labels, newest last; kept by the server, so a reload keeps them.
  const undoStack = (page.recent || []).map((r) => ({ id: r.image_id, label: r.label })).reverse();

  async function api(method, url, body) {
    const response = await fetch(url, {
      method,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf, Accept: "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = await response.json().catch(() => ({}));
    if (response.status === 401) window.location.assign("/login?next=/review");
    if (!response.ok) throw new Error(data.error || response.statusText);
    return data;
  }

  function status(message, kind) {
    const box = $("status");
    box.textContent = message || "";
    box.className = "status" + (kind ? " " + kind : "");
  }

  function fmt(x, digits) {
    return x === null || x === undefined ? "—" : Number(x).toFixed(digits);
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function renderBars(it) {
    const bars = $("bars");
    bars.replaceChildren();
    if (!it.mean || !it.classes) return;
    const order = it.mean.map((m, i) => i).sort((a, b) => it.mean[b] - it.mean[a]).slice(0, TOP);
    for (const i of order) {
      const mean = it.mean[i], std = it.std ? it.std[i] : 0;
      const row = el("div", "bar-row" + (it.classes[i] === it.predicted_label ? " top" : ""));
      row.append(el("span", "bar-name", it.classes[i]));
      const track = el("span", "bar-track");
      const fill = el("span", "bar-fill");
      fill.style.width = (100 * mean).toFixed(1) + "%";
      const err = el("span", "bar-std");
      err.style.left = (100 * Math.max(0, mean - std)).toFixed(1) + "%";
      err.style.width = (100 * (Math.min(1, mean + std) - Math.max(0, mean - std))).toFixed(1) + "%";
      track.append(fill, err);
      row.append(track, el("span", "bar-value", fmt(mean, 2) + " ± " + fmt(std, 2)));
      bars.append(row);
    }
  }

  function renderMetrics(it) {
    const dl = $("metrics");
    dl.replaceChildren();
    if (it.blind) return;
    for (const [key, name] of METRICS) {
      const dt = el("dt", null, name);
      const dd = el("dd");
      dd.append(el("span", "metric-value", fmt(it[key], 3)), el("span", "hint", page.hints[key] || ""));
      dt.dataset.metric = key;
      dl.append(dt, dd);
    }
  }

  function sizeImage(img) {
    const w = img.naturalWidth, h = img.naturalHeight;
    if (!w || !h) return;
    const frame = img.parentElement;
    const style = getComputedStyle(frame);
    const room = (size, a, b) => size - parseFloat(style[a]) - parseFloat(style[b]);
    const fit = Math.min(
      room(frame.clientWidth, "paddingLeft", "paddingRight") / w,
      room(frame.clientHeight, "paddingTop", "paddingBottom") / h,
    );
    // Small images grow by a whole number (they stay crisp); large ones shrink to fit.
    const small = fit >= 2;
    img.classList.toggle("pixelated", small);
    const scale = small ? Math.floor(fit) : Math.min(1, fit);
    img.style.width = Math.max(1, Math.floor(w * scale)) + "px";
  }

  function confidence(it) {
    if (!it || !it.mean || !it.classes) return null;
    const i = it.classes.indexOf(it.predicted_label);
    return i < 0 ? null : it.mean[i];
  }

  // Accept is the default (highlighted, Enter) only when the model is confident enough.
  function acceptIsDefault(it) {
    const c = confidence(it);
    return !!it && !it.blind && it.predicted_label != null && c !== null && c >= page.accept_confidence;
  }

  function renderRecent() {
    const list = $("recent-list");
    list.replaceChildren();
    for (const entry of undoStack.slice().reverse()) {
      const li = el("li");
      const link = el("a", null, "#" + entry.id);
      link.href = "/items/" + entry.id + "?" + queueQuery();
      li.append(link, document.createTextNode(" " + shown(entry.label)));
      list.append(li);
    }
    $("recent").hidden = undoStack.length === 0;
  }

  function render(it) {
    item = it;
    shownAt = performance.now();
    $("item").hidden = !it;
    $("empty").hidden = !!it;
    if (!it) {
      $("lease").textContent = "";
      return;
    }
    const img = $("item-image");
    img.onload = () => sizeImage(img);
    img.src = "/images/" + it.sha256;
    img.alt = "item " + it.id + ": " + it.original_filename;
    $("item-id").textContent = "#" + it.id;
    $("item-filename").textContent = it.original_filename;
    $("item-reason").textContent = it.reason || "";
    $("item-reason").hidden = !it.reason;
    // A random audit item is shown blind: no prediction, scores or given label, no accept.
    $("blind-note").hidden = !it.blind;
    $("model-view").hidden = !!it.blind;
    $("predicted").textContent = it.predicted_label ?? "—";
    $("given").textContent = it.given_label ?? "—";
    $("given").classList.toggle("warn", it.given_label != null && it.given_label !== it.predicted_label);
    $("accept-label").textContent = it.predicted_label ?? "";
    $("accept").disabled = it.predicted_label == null;
    $("accept").hidden = !!it.blind;
    $("accept").classList.toggle("default", acceptIsDefault(it));
    const c = confidence(it);
    $("accept").title = c === null ? "" : "the model gives " + it.predicted_label + " " + Math.round(100 * c) + "%";
    $("your-label").hidden = !it.your_label;
    $("your-label").textContent = it.your_label
      ? "You labeled this " + shown(it.your_label) + ". Answer again to change it."
      : "";
    $("samples").textContent = it.samples ?? "—";
    renderBars(it);
    renderMetrics(it);
    if (it.can_label === false) status(it.why_not + ": you can look at it, not label it.", "warn");
    document.body.dataset.itemId = String(it.id);
    history.replaceState(null, "", "/items/" + it.id + "?" + queueQuery());
  }

  function tick() {
    const lease = $("lease");
    if (!item || !item.lease_expires_at) {
      lease.textContent = "";
      return;
    }
    const left = Math.round((Date.parse(item.lease_expires_at) - Date.now()) / 1000);
    lease.classList.toggle("expired", left <= 0);
    lease.classList.toggle("low", left > 0 && left < 60);
    lease.textContent = left > 0
      ? "held for " + Math.floor(left / 60) + ":" + String(left % 60).padStart(2, "0")
      : "hold expired: another labeler may take it";
  }

  async function run(action) {
    if (busy) return;
    busy = true;
    document.body.classList.add("busy");
    try {
      await action();
    } catch (error) {
      status(error.message, "error");
    } finally {
      busy = false;
      document.body.classList.remove("busy");
      $("undo").disabled = undoStack.length === 0;
      renderRecent();
    }
  }

  async function next() {
    const body = { strategy: page.strategy };
    for (const key of ["predicted", "given"]) if (filters[key]) body[key] = filters[key];
    const data = await api("POST", "/api/queue/next", body);
    render(data.item);
  }

  function answer(label) {
    if (!item) return;
    if (item.can_label === false) {
      status(item.why_not + ": press s for the next item.", "error");
      return;
    }
    run(async () => {
      const seconds = (performance.now() - shownAt) / 1000;
      await api("POST", "/api/items/" + item.id + "/labels", { label, seconds });
      const kept = undoStack.filter((entry) => entry.id !== item.id);
      undoStack.splice(0, undoStack.length, ...kept, { id: item.id, label });
      if (undoStack.length > 10) undoStack.shift();
      labeled += 1;
      $("done-count").textContent = labeled + " labeled this session";
      status("#" + item.id + " labeled " + shown(label) + ".", "ok");
      await next();
    });
  }

  function skip() {
    if (!item) return;
    run(async () => {
      await api("POST", "/api/items/" + item.id + "/skip");
      status("#" + item.id + " skipped.", "ok");
      await next();
    });
  }

  function undo() {
    if (!undoStack.length) return;
    run(async () => {
      const id = undoStack[undoStack.length - 1].id;
      let data;
      try {
        data = await api("POST", "/api/items/" + id + "/labels/undo");
      } catch (error) {
        undoStack.pop(); // voided, taken or gone: the next z tries the one before
        throw new Error("Cannot undo #" + id + ": " + error.message);
      }
      if (item && item.id !== id) await api("POST", "/api/items/" + item.id + "/release");
      undoStack.pop();
      labeled = Math.max(0, labeled - 1);
      $("done-count").textContent = labeled + " labeled this session";
      status("Label on #" + id + " undone: label it again.", "ok");
      render(data.item);
    });
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest("button.answer, button.secondary");
    if (!button) return;
    if (button.dataset.label) answer(button.dataset.label);
    else if (button.dataset.action === "accept" && item && !item.blind) answer(item.predicted_label);
    else if (button.dataset.action === "skip") skip();
    else if (button.dataset.action === "undo") undo();
  });

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    if (target.closest && target.closest("input, select, textarea")) return;
    const key = event.key;
    const help = $("help");
    if (help.open) {
      if (key === "?" || key === "Escape") help.close();
      event.preventDefault();
      return;
    }
    let handled = true;
    if (key === "Enter") {
      if (acceptIsDefault(item)) answer(item.predicted_label);
      else if (item && !item.blind && item.predicted_label != null) {
        status("The model is not sure of " + item.predicted_label + ": pick a class (Accept is a click away).", "warn");
      }
    } else if (key === "?") help.showModal();
    else if (key === "+") zoom();
    else if (key === "n") answer("none_of_these");
    else if (key === "u") answer("unsure");
    else if (key === "s") skip();
    else if (key === "z") undo();
    else if (keyToLabel.has(key)) answer(keyToLabel.get(key));
    else handled = false;
    if (handled) event.preventDefault();
  });

  function zoom() {
    document.body.classList.toggle("zoomed");
    sizeImage($("item-image"));
  }

  $("strategy").addEventListener("change", (event) => {
    page.strategy = event.target.value;
    window.location.assign("/review?" + queueQuery());
  });
  window.addEventListener("resize", () => sizeImage($("item-image")));

  render(page.item);
  renderRecent();
  $("undo").disabled = undoStack.length === 0;
  tick();
  setInterval(tick, 1000);
})();
