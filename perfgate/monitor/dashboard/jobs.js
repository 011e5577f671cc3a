// perfgate job browser: a live list of jobs and a job's page, through the public HTTP API
// (GET /v1/jobs, GET /v1/jobs/{id}, its /logs and /events, DELETE, and POST .../retry when the
// server's OpenAPI document lists it), with the token the user enters (kept in sessionStorage).
// No build step and no dependencies.
"use strict";

(function () {
  const TOKEN_KEY = "perfgate-token";
  // Jobs per page: ?jobs_limit=N (1 to 1000), else 50.
  const PAGE_SIZE = Math.min(1000, Math.max(1,
    Number(new URLSearchParams(location.search).get("jobs_limit")) || 50));
  const REFRESH_MS = 2000;
  const MAX_FETCHES = 10; // pages read at most to fill one page when filtering by task
  const STATES = ["queued", "running", "retrying", "succeeded", "failed", "cancelled", "dead"];
  const FINISHED = ["succeeded", "failed", "cancelled", "dead"];
  const $ = (id) => document.getElementById(id);

  // -- the token -----------------------------------------------------------------------------
  function token() {
    return sessionStorage.getItem(TOKEN_KEY) || new URLSearchParams(location.search).get("token") || "";
  }

  function headers(extra) {
    const h = Object.assign({ Accept: "application/json" }, extra || {});
    const t = token();
    if (t) h.Authorization = "Bearer " + t;
    return h;
  }

  // The server's answer as {ok, status, body, text}: a problem document is shown as it is.
  async function api(method, path) {
    let response;
    try {
      response = await fetch(path, { method: method, headers: headers(), cache: "no-store" });
    } catch (err) {
      return { ok: false, status: 0, body: null, text: "cannot reach the server: " + err.message };
    }
    let body = null;
    try { body = await response.json(); } catch (err) { body = null; }
    let text = response.status + " " + response.statusText;
    if (body && !response.ok) text = response.status + " " + (body.title || "") + ": " + (body.detail || "");
    return { ok: response.ok, status: response.status, body: body, text: text };
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "dataset") Object.assign(node.dataset, v);
      else if (k === "className") node.className = v;
      else node.setAttribute(k, v);
    }
    node.append(...children.filter((c) => c !== null && c !== undefined).map(String));
    return node;
  }

  function when(iso) {
    return iso ? new Date(iso).toLocaleTimeString() : "–";
  }

  function json(value) {
    return JSON.stringify(value, null, 2);
  }

  // -- the list ------------------------------------------------------------------------------
  const list = {
    cursors: [null], // the cursor of each page seen; the last is the current page's
    next: null,
    timer: null,
  };

  function filters() {
    return { state: $("job-state").value, task: $("job-task").value.trim() };
  }

  async function loadPage() {
    const f = filters();
    let cursor = list.cursors[list.cursors.length - 1];
    const rows = [];
    let fetches = 0;
    let answer = null;
    // The list API filters by state; a task filter is applied here, reading on (by cursor)
    // until the page is full, the list ends, or MAX_FETCHES pages were read.
    do {
      const q = new URLSearchParams({ limit: String(PAGE_SIZE) });
      if (f.state) q.set("state", f.state);
      if (cursor) q.set("cursor", cursor);
      answer = await api("GET", "/v1/jobs?" + q);
      fetches += 1;
      if (!answer.ok) break;
      for (const job of answer.body.jobs) if (!f.task || job.task === f.task) rows.push(job);
      cursor = answer.body.next_cursor;
    } while (f.task && cursor && rows.length < PAGE_SIZE && fetches < MAX_FETCHES);
    const status = $("job-list-status");
    if (!answer.ok) {
      status.textContent = "jobs unknown: " + answer.text;
      status.className = "problem";
      $("job-list").dataset.loaded = "error";
      return;
    }
    status.className = "";
    status.textContent = rows.length ? "" : "no jobs" + (f.state || f.task ? " match the filter" : "");
    list.next = cursor;
    renderRows(rows);
    $("job-next").disabled = !list.next;
    $("job-prev").disabled = list.cursors.length < 2;
  }

  function renderRows(jobs) {
    const body = document.querySelector("#job-list tbody");
    body.replaceChildren(...jobs.map((job) => {
      const link = el("a", { href: "#job/" + encodeURIComponent(job.id) }, job.id);
      const tr = el("tr", { dataset: { id: job.id, state: job.state, task: job.task } });
      tr.append(el("td", {}, link), el("td", {}, job.task),
        el("td", { className: "state state-" + job.state }, job.state),
        el("td", {}, Math.round((job.progress || 0) * 100) + " %"),
        el("td", {}, job.attempts), el("td", {}, when(job.created_at)));
      return tr;
    }));
    $("job-list").dataset.loaded = String(jobs.length);
  }

  function restartList() {
    list.cursors = [null];
    loadPage();
  }

  function scheduleRefresh() {
    clearInterval(list.timer);
    // Live on the first page: newer jobs appear at its top. Later pages stay put.
    list.timer = setInterval(() => { if (list.cursors.length === 1) loadPage(); }, REFRESH_MS);
  }

  // -- a job's page --------------------------------------------------------------------------
  const page = { id: null, abort: null, job: null, retry: false };

  async function openJob(id) {
    closeJob();
    page.id = id;
    const panel = $("job-page");
    panel.hidden = false;
    $("job-id").textContent = id;
    $("job-answer").textContent = "";
    $("job-logs").replaceChildren();
    $("job-history").replaceChildren();
    $("job-outcome").textContent = "";
    $("job-outcome").className = "";
    panel.dataset.stream = "opening";
    const answer = await api("GET", "/v1/jobs/" + encodeURIComponent(id));
    if (page.id !== id) return;
    if (!answer.ok) {
      $("job-answer").textContent = answer.text;
      panel.dataset.stream = "error";
      return;
    }
    renderJob(answer.body);
    follow(id, null);
  }

  function closeJob() {
    if (page.abort) page.abort.abort();
    page.abort = null;
    page.id = null;
    page.job = null;
    $("job-page").hidden = true;
  }

  function renderJob(job) {
    page.job = job;
    const panel = $("job-page");
    panel.dataset.state = job.state;
    $("job-task-name").textContent = job.task;
    $("job-state-now").textContent = job.state;
    $("job-state-now").className = "state state-" + job.state;
    $("job-args").textContent = json(job.args);
    $("job-times").textContent = "created " + when(job.created_at) + " · started " +
      when(job.started_at) + " · finished " + when(job.finished_at) + " · attempts " + job.attempts;
    setProgress(job.progress || 0, job.progress_message || "");
    if (job.state === "succeeded") showOutcome("result", job.result);
    else if (job.error) showOutcome("error", job.error);
    const finished = FINISHED.indexOf(job.state) >= 0;
    $("job-cancel").disabled = finished;
    $("job-retry").hidden = !page.retry;
    $("job-retry").disabled = !finished || job.state === "succeeded";
  }

  function setProgress(fraction, message) {
    $("job-progress").value = fraction;
    $("job-progress").dataset.fraction = String(fraction);
    $("job-progress-text").textContent = Math.round(fraction * 100) + " % " + (message || "");
  }

  function showOutcome(kind, value) {
    const out = $("job-outcome");
    out.className = kind;
    out.dataset.kind = kind;
    out.textContent = kind + ": " + json(value);
  }

  function addHistory(text) {
    $("job-history").append(el("li", {}, new Date().toLocaleTimeString() + "  " + text));
  }

  function addLog(line, stream) {
    const logs = $("job-logs");
    logs.append(el("div", { className: "log-" + stream }, line));
    logs.dataset.lines = String(logs.childNodes.length);
    logs.scrollTop = logs.scrollHeight;
  }

  async function loadLogs(id) {
    let after = 0;
    for (;;) {
      const answer = await api("GET", "/v1/jobs/" + encodeURIComponent(id) + "/logs?after=" + after);
      if (!answer.ok || page.id !== id) return;
      for (const l of answer.body.lines) addLog(l.line, l.stream);
      if (answer.body.lines.length < 1000) return;
      after = answer.body.lines[answer.body.lines.length - 1].seq;
    }
  }

  function onEvent(name, data) {
    if (name === "snapshot") {
      renderJob(data);
      addHistory("snapshot: " + data.state);
      $("job-logs").replaceChildren();
      if (data.state !== "queued") loadLogs(data.id); // history is gone: read the lines kept
      return;
    }
    if (name === "state") {
      const job = Object.assign({}, page.job, { state: data.state });
      if (data.attempt) job.attempts = data.attempt;
      renderJob(job);
      let text = data.state + " (attempt " + data.attempt + ")";
      if (data.error) text += ": " + (data.error.message || data.error.type);
      if (data.retry_in_s) text += ", retry in " + data.retry_in_s + " s";
      addHistory(text);
      if (data.error) showOutcome("error", data.error);
    } else if (name === "progress") {
      setProgress(data.fraction, data.message);
    } else if (name === "log") {
      addLog(data.line, data.stream);
    } else if (name === "result") {
      showOutcome("result", data.result);
    } else if (name === "error") {
      showOutcome("error", data.error);
    }
  }

  // Server-Sent Events read with fetch (EventSource cannot send the Authorization header).
  async function follow(id, lastId) {
    const panel = $("job-page");
    const abort = new AbortController();
    page.abort = abort;
    const h = headers({ Accept: "text/event-stream" });
    if (lastId) h["Last-Event-ID"] = lastId;
    let retryMs = 2000;
    let ended = false;
    try {
      const response = await fetch("/v1/jobs/" + encodeURIComponent(id) + "/events",
        { headers: h, signal: abort.signal, cache: "no-store" });
      if (response.status === 204) { panel.dataset.stream = "ended"; return; }
      if (!response.ok) {
        let text = String(response.status);
        try { const p = await response.json(); text += " " + p.title + ": " + p.detail; } catch (err) { /* as is */ }
        $("job-answer").textContent = "live events: " + text;
        panel.dataset.stream = "error";
        return;
      }
      panel.dataset.stream = "live";
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          let name = "message", data = [], eventId = null;
          for (const line of block.split("\n")) {
            const colon = line.indexOf(":");
            if (colon === 0) continue; // a comment (keepalive)
            const field = colon < 0 ? line : line.slice(0, colon);
            const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
            if (field === "event") name = value;
            else if (field === "data") data.push(value);
            else if (field === "id") eventId = value;
            else if (field === "retry" && /^\d+$/.test(value)) retryMs = Number(value);
          }
          if (eventId !== null) lastId = eventId;
          if (!data.length) continue;
          const parsed = JSON.parse(data.join("\n"));
          onEvent(name, parsed);
          if ((name === "state" || name === "snapshot") && FINISHED.indexOf(parsed.state) >= 0) ended = true;
        }
      }
    } catch (err) {
      if (abort.signal.aborted) return;
      $("job-answer").textContent = "live events interrupted: " + err.message;
    }
    if (page.id !== id || abort.signal.aborted) return;
    if (ended) { panel.dataset.stream = "ended"; return; }
    // The stream ended before the job did (a drain, a slow reader): resume where it stopped.
    panel.dataset.stream = "reconnecting";
    setTimeout(() => { if (page.id === id) follow(id, lastId); }, retryMs);
  }

  async function cancelJob() {
    const id = page.id;
    const answer = await api("DELETE", "/v1/jobs/" + encodeURIComponent(id));
    $("job-answer").textContent = "cancel: " + (answer.ok ? "job is " + answer.body.state : answer.text);
    if (answer.ok && page.id === id) renderJob(answer.body);
  }

  async function retryJob() {
    const id = page.id;
    const answer = await api("POST", "/v1/jobs/" + encodeURIComponent(id) + "/retry");
    $("job-answer").textContent = "retry: " + (answer.ok ? "job is " + answer.body.state : answer.text);
    if (answer.ok && page.id === id) {
      renderJob(answer.body);
      if (page.abort) page.abort.abort();
      follow(id, null);
    }
  }

  // The retry button only where the server has the route.
  async function learnRoutes() {
    const answer = await api("GET", "/openapi.json");
    const paths = (answer.ok && answer.body && answer.body.paths) || {};
    page.retry = Boolean(paths["/v1/jobs/{job_id}/retry"] && paths["/v1/jobs/{job_id}/retry"].post);
    $("job-retry").hidden = !page.retry;
  }

  // -- wiring --------------------------------------------------------------------------------
  function route() {
    const match = /^#job\/(.+)$/.exec(location.hash);
    if (match) openJob(decodeURIComponent(match[1]));
    else closeJob();
  }

  function init() {
    const stateSelect = $("job-state");
    for (const s of STATES) stateSelect.append(el("option", { value: s }, s));
    stateSelect.addEventListener("change", restartList);
    $("job-task").addEventListener("change", restartList);
    $("job-next").addEventListener("click", () => { list.cursors.push(list.next); loadPage(); });
    $("job-prev").addEventListener("click", () => { list.cursors.pop(); loadPage(); });
    $("job-cancel").addEventListener("click", cancelJob);
    $("job-retry").addEventListener("click", retryJob);
    $("job-close").addEventListener("click", () => { location.hash = ""; });
    $("token").value = token();
    $("token-form").addEventListener("submit", (event) => {
      event.preventDefault();
      sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
      window.dispatchEvent(new Event("perfgate-token"));
      restartList();
      learnRoutes();
      if (page.id) openJob(page.id);
    });
    window.addEventListener("hashchange", route);
    learnRoutes();
    restartList();
    scheduleRefresh();
    route();
  }

  init();
})();
