// Reelay dashboard: job list, submit form and job page, kept live with
// Server-Sent Events. Plain JavaScript, no build step. Server data is only
// ever written with textContent / attributes, never parsed as HTML.
"use strict";

// ---------------------------------------------------------------------------
// Constants
// ---------------------------------------------------------------------------

const PAGE_SIZE = 20;
const KEY_STORAGE = "reelay.apiKey";
const DEBOUNCE_MS = 250;

// Named events of the global stream (GET /api/v1/events).
const GLOBAL_EVENTS = [
  "job.created", "job.started", "job.requeued", "job.cancel_requested",
  "job.progress", "job.completed", "job.failed", "job.cancelled",
  "stage.started", "stage.completed", "stage.skipped", "stage.failed",
];

// Job status words. The global stream says "running" where v1 says "processing".
const ACTIVE = new Set(["queued", "processing", "running"]);
const FINISHED = new Set(["completed", "failed", "cancelled"]);

// Per-job event kinds that change what the job page shows.
const REFRESH_KINDS = new Set([
  "start", "complete", "skipped", "error", "completed", "failed",
  "cancelled", "started", "requeued", "cancel_requested",
]);
// Per-job event kinds after which the server ends the log stream.
const TERMINAL_KINDS = new Set(["completed", "failed", "cancelled"]);

const LEVELS = ["info", "success", "warning", "error"];

// ---------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------

const state = {
  view: null,          // "list" or "job"
  viewToken: 0,        // bumped on every route change; stale async work checks it
  list: { page: 1, status: "", seq: 0 },
  job: null,           // the open job page, see enterJob()
  global: { source: null, retryTimer: null, backoff: 2000 },
  jobTimers: new Map(), // job id -> pending debounced refetch
  listTimer: null,
};

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

const $ = (id) => document.getElementById(id);

// Creates an element. props: class, text, dataset, on<event>, or any attribute.
// Children may be nodes or strings (strings become text nodes).
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child !== null && child !== undefined && child !== false) node.append(child);
  }
  return node;
}

// Adds or removes a child so that it is present exactly when `show` is true.
function toggleChild(parent, child, show) {
  if (show && child.parentNode !== parent) parent.append(child);
  if (!show && child.parentNode) child.remove();
}

// Fills a <dl> from [label, value] pairs, skipping empty values.
function fillDl(dl, entries) {
  const rows = entries
    .filter(([, value]) => value !== null && value !== undefined && value !== "")
    .map(([label, value]) => el("div", {}, el("dt", { text: label }), el("dd", { text: String(value) })));
  dl.replaceChildren(...rows);
}

const isNum = (n) => typeof n === "number" && Number.isFinite(n);
const pad2 = (n) => String(n).padStart(2, "0");
const clampPercent = (n) => (isNum(n) ? Math.min(100, Math.max(0, n)) : 0);

// Rounds to at most `digits` decimals and drops trailing zeros: 7.50 -> "7.5".
function fmtNumber(n, digits = 2) {
  return isNum(n) ? String(Math.round(n * 10 ** digits) / 10 ** digits) : null;
}
const fmtSeconds = (n) => (isNum(n) ? `${n.toFixed(1)} s` : null);
const fmtMegabytes = (n) => (isNum(n) ? `${(n / 1e6).toFixed(1)} MB` : null);
const fmtSize = (w, h) => (isNum(w) && isNum(h) ? `${w} × ${h}` : null);

// RFC 3339 -> local date and time.
function fmtDateTime(iso) {
  if (!iso) return null;
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return date.toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
}

// Unix seconds -> local HH:MM:SS.
function fmtClock(seconds) {
  if (!isNum(seconds)) return "--:--:--";
  const d = new Date(seconds * 1000);
  return `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
}

// [[start, end], ...] -> "1.0–2.5 s, 8.0–9.0 s" or "none".
function fmtStretches(list) {
  if (!Array.isArray(list)) return null;
  if (list.length === 0) return "none";
  return list.map(([s, e]) => `${isNum(s) ? s.toFixed(1) : "?"}–${isNum(e) ? e.toFixed(1) : "?"} s`).join(", ");
}

const jobTitle = (job) => (job.topic && job.topic.trim() ? job.topic : "Untitled job");
const jobHash = (id) => `#/jobs/${encodeURIComponent(id)}`;
const jobApi = (id) => `/api/v1/jobs/${encodeURIComponent(id)}`;
const normalStatus = (s) => (s === "running" ? "processing" : s);

// Sets a status badge: the word as text (not colour alone) plus data-status for CSS.
function setStatus(node, status) {
  node.textContent = status || "unknown";
  node.dataset.status = status || "unknown";
}

// ---------------------------------------------------------------------------
// API key
// ---------------------------------------------------------------------------

function getKey() {
  try { return localStorage.getItem(KEY_STORAGE) || ""; } catch { return ""; }
}

function setKey(key) {
  try {
    if (key) localStorage.setItem(KEY_STORAGE, key);
    else localStorage.removeItem(KEY_STORAGE);
  } catch { /* storage unavailable: nothing to keep */ }
  updateForgetButton();
}

// "Forget key" shows only while a key is stored.
function updateForgetButton() {
  $("forget-key").hidden = !getKey();
}

// EventSource cannot send headers, so streams and <video> take the key in the URL.
function withToken(url) {
  const key = getKey();
  if (!key) return url;
  return `${url}${url.includes("?") ? "&" : "?"}access_token=${encodeURIComponent(key)}`;
}

function showKeyPanel() {
  const panel = $("key-panel");
  $("key-message").textContent = getKey()
    ? "The server refused the stored API key. Enter a valid key."
    : "This server needs an API key.";
  if (panel.hidden) {
    panel.hidden = false;
    $("api-key").focus();
  }
}

function onSaveKey(event) {
  event.preventDefault();
  const input = $("api-key");
  const key = input.value.trim();
  if (!key) {
    $("key-message").textContent = "Enter a key first.";
    input.focus();
    return;
  }
  setKey(key);
  input.value = "";
  $("key-panel").hidden = true;
  reloadEverything();
}

function onForgetKey() {
  setKey("");
  reloadEverything();
}

// After the key changed: reopen the stream with the new token and redraw.
function reloadEverything() {
  openGlobalStream();
  loadVoices();
  route(false);
}

// ---------------------------------------------------------------------------
// Fetch wrapper
// ---------------------------------------------------------------------------

// Returns { ok, status, data, message, retryAfter }. Never throws.
async function api(path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  const key = getKey();
  if (key) headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";

  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    return { ok: false, status: 0, message: "Could not reach the server." };
  }

  let json = null;
  try { json = await response.json(); } catch { /* empty or not JSON */ }

  if (response.status === 401) showKeyPanel();

  if (response.ok && (!json || json.success !== false)) {
    // Most v1 answers are `{"success": true, "data": ...}`; the job list
    // (seed 004's shape) is the bare object.
    const data = json && "success" in json ? json.data : json;
    return { ok: true, status: response.status, data };
  }
  return {
    ok: false,
    status: response.status,
    message: (json && json.message) || `Request failed (HTTP ${response.status}).`,
    retryAfter: response.headers.get("Retry-After"),
  };
}

// ---------------------------------------------------------------------------
// Routing
// ---------------------------------------------------------------------------

function parseRoute() {
  const match = /^#\/jobs\/([^/?#]+)\/?$/.exec(location.hash);
  if (match) {
    try { return { view: "job", id: decodeURIComponent(match[1]) }; } catch { /* bad escape */ }
  }
  return { view: "list" };
}

// Shows the view the hash names. moveFocus is true on user navigation so that
// keyboard and screen-reader users land at the top of the new view.
function route(moveFocus) {
  const target = parseRoute();
  state.viewToken += 1;
  leaveJob();
  state.view = target.view;
  $("list-view").hidden = target.view !== "list";
  $("job-view").hidden = target.view !== "job";
  if (target.view === "job") {
    enterJob(target.id, moveFocus);
  } else {
    document.title = "Reelay";
    loadList();
    if (moveFocus) $("form-title").focus();
  }
}

// Re-reads whatever is on screen (after the stream (re)connects).
function refreshVisible() {
  if (state.view === "list") scheduleListRefresh();
  else if (state.job && state.job.data) scheduleJobRefresh(state.job.id);
}

// ---------------------------------------------------------------------------
// Global event stream (shared by list and job page, kept across routes)
// ---------------------------------------------------------------------------

function setConnection(live) {
  const node = $("connection");
  node.textContent = live ? "live" : "reconnecting…";
  node.dataset.state = live ? "live" : "reconnecting";
}

function openGlobalStream() {
  const g = state.global;
  clearTimeout(g.retryTimer);
  if (g.source) g.source.close();
  setConnection(false);

  const source = new EventSource(withToken("/api/v1/events"));
  g.source = source;

  source.addEventListener("open", () => {
    if (g.source !== source) return;
    g.backoff = 2000;
    setConnection(true);
    refreshVisible(); // catch up on anything missed while disconnected
  });

  source.addEventListener("error", () => {
    if (g.source !== source) return;
    setConnection(false);
    // While CONNECTING the browser retries (with Last-Event-ID) by itself.
    // CLOSED means it gave up (e.g. an error status): retry ourselves, slower each time.
    if (source.readyState === EventSource.CLOSED) {
      g.retryTimer = setTimeout(openGlobalStream, g.backoff);
      g.backoff = Math.min(g.backoff * 2, 30000);
    }
  });

  for (const name of GLOBAL_EVENTS) {
    source.addEventListener(name, (message) => onGlobalEvent(name, message));
  }
}

function onGlobalEvent(name, message) {
  let data;
  try { data = JSON.parse(message.data); } catch { return; }
  const id = data && data.job_id;
  if (!id) return;

  if (state.view === "job") {
    if (state.job && state.job.id === id) scheduleJobRefresh(id);
    return;
  }

  if (findRow(id)) {
    scheduleJobRefresh(id);
  } else if (state.list.page === 1) {
    // A job not on screen may belong on page 1: a new job, or one that
    // entered the filtered state.
    const status = data.state ? normalStatus(data.state) : null;
    if (name === "job.created" && filterAllows(status || "queued")) scheduleListRefresh();
    else if (status && state.list.status && filterAllows(status)) scheduleListRefresh();
  }
}

// Debounced refetch of one job, then re-render wherever it shows.
function scheduleJobRefresh(id) {
  if (state.jobTimers.has(id)) return;
  state.jobTimers.set(id, setTimeout(() => {
    state.jobTimers.delete(id);
    refreshJob(id);
  }, DEBOUNCE_MS));
}

function scheduleListRefresh() {
  if (state.listTimer) return;
  state.listTimer = setTimeout(() => {
    state.listTimer = null;
    if (state.view === "list") loadList();
  }, DEBOUNCE_MS);
}

async function refreshJob(id) {
  const res = await api(jobApi(id));
  if (state.view === "list") {
    const row = findRow(id);
    if (!row) return;
    if (!res.ok) {
      if (res.status === 404) scheduleListRefresh(); // the job is gone
      return;
    }
    // A job that left the filtered state leaves the page: reload it.
    if (filterAllows(res.data.status)) fillRow(row, res.data);
    else scheduleListRefresh();
  } else if (state.job && state.job.id === id && state.job.data && res.ok) {
    renderJob(res.data);
  }
}

// ---------------------------------------------------------------------------
// Job list
// ---------------------------------------------------------------------------

function filterAllows(status) {
  if (!state.list.status) return true;
  return state.list.status.split(",").includes(normalStatus(status));
}

function findRow(id) {
  for (const row of $("job-list").children) {
    if (row.dataset.jobId === id) return row;
  }
  return null;
}

async function loadList() {
  const seq = ++state.list.seq;
  const { page, status } = state.list;
  const params = new URLSearchParams({ page: String(page), page_size: String(PAGE_SIZE) });
  if (status) params.set("status", status);

  const list = $("job-list");
  list.setAttribute("aria-busy", "true");
  const res = await api(`/api/v1/jobs?${params}`);
  if (seq !== state.list.seq) return; // a newer request is under way
  list.removeAttribute("aria-busy");

  const message = $("list-message");
  if (!res.ok) {
    message.textContent = res.message;
    return;
  }
  const jobs = (res.data && res.data.jobs) || [];
  const total = (res.data && res.data.total) || 0;
  const pages = Math.max(1, Math.ceil(total / PAGE_SIZE));
  if (page > pages) { // the page emptied (or the filter changed): go to the last one
    state.list.page = pages;
    loadList();
    return;
  }

  renderList(jobs);
  message.textContent = jobs.length ? "" : (status ? "No jobs match this filter." : "No jobs yet.");
  $("page-info").textContent = `Page ${page} of ${pages}`;
  $("prev-page").disabled = page <= 1;
  $("next-page").disabled = page >= pages;
}

// Updates rows in place (by job id) so focus and scroll survive live updates.
function renderList(jobs) {
  const list = $("job-list");
  const existing = new Map();
  for (const row of list.children) existing.set(row.dataset.jobId, row);

  jobs.forEach((job, i) => {
    const row = existing.get(job.job_id) || buildRow(job.job_id);
    fillRow(row, job);
    if (list.children[i] !== row) list.insertBefore(row, list.children[i] || null);
  });
  while (list.children.length > jobs.length) list.lastElementChild.remove();
}

function buildRow(id) {
  return el("li", { class: "job-row", "data-job-id": id },
    el("div", { class: "job-row-head" },
      el("a", { class: "job-topic", href: jobHash(id) }),
      el("span", { class: "job-status badge" })),
    el("div", { class: "progress-line" },
      el("progress", { class: "job-progress-bar", max: 100, value: 0 }),
      el("span", { class: "job-percent" })),
    el("div", { class: "job-row-meta" },
      el("span", { class: "job-stage" }),
      el("time", { class: "job-created" })));
}

function fillRow(row, job) {
  const title = jobTitle(job);
  const percent = clampPercent(job.progress_percent);
  row.querySelector(".job-topic").textContent = title;
  setStatus(row.querySelector(".job-status"), job.status);
  const bar = row.querySelector("progress");
  bar.value = percent;
  bar.setAttribute("aria-label", `Progress of ${title}`);
  row.querySelector(".job-percent").textContent = `${Math.round(percent)}%`;
  row.querySelector(".job-stage").textContent =
    job.current_stage && ACTIVE.has(job.status) ? `Stage: ${job.current_stage}` : "";
  const created = row.querySelector(".job-created");
  created.dateTime = job.created_at || "";
  created.textContent = fmtDateTime(job.created_at) || "";
}

// ---------------------------------------------------------------------------
// Submit form and voices
// ---------------------------------------------------------------------------

function currentMode() {
  return $("mode-script").checked ? "script" : "topic";
}

function onModeChange() {
  const mode = currentMode();
  $("topic-field").hidden = mode !== "topic";
  $("script-field").hidden = mode !== "script";
}

async function loadVoices() {
  const res = await api("/api/v1/voices");
  if (!res.ok || !res.data) return;
  const voices = Array.isArray(res.data.voices) ? res.data.voices : [];
  const select = $("voice");
  if (voices.length === 0) {
    select.replaceChildren(el("option", { value: "" }, "Server default"));
    return;
  }
  const previous = select.value;
  select.replaceChildren(...voices.map((v) => el("option", { value: v.name }, v.label || v.name)));
  const names = voices.map((v) => v.name);
  if (names.includes(previous)) select.value = previous;
  else if (names.includes(res.data.default)) select.value = res.data.default;
}

async function onSubmit(event) {
  event.preventDefault();
  const error = $("form-error");
  error.textContent = "";

  // Light checks only; the server has the final word on limits.
  const mode = currentMode();
  const field = $(mode);
  const text = field.value.trim();
  if (!text) {
    error.textContent = mode === "topic" ? "Enter a topic." : "Enter a script.";
    field.focus();
    return;
  }
  const sceneCount = Number.parseInt($("scene-count").value, 10);
  if (Number.isNaN(sceneCount)) {
    error.textContent = "Enter a scene count.";
    $("scene-count").focus();
    return;
  }

  const body = {
    [mode]: text,
    aspect_ratio: $("aspect-ratio").value,
    scene_count: sceneCount,
    use_music: $("use-music").checked,
    subtitles_position: $("subtitles-position").value,
  };
  const voice = $("voice").value;
  if (voice) body.voice = voice;

  const button = $("submit-button");
  button.disabled = true;
  $("submit-form").setAttribute("aria-busy", "true");
  const res = await api("/api/v1/jobs", { method: "POST", body });
  button.disabled = false;
  $("submit-form").removeAttribute("aria-busy");

  if (res.ok && res.data && res.data.job_id) {
    field.value = "";
    location.hash = jobHash(res.data.job_id);
    return;
  }
  let message = res.ok ? "The server answered without a job id." : res.message;
  if (res.retryAfter && !/retry after/i.test(message)) {
    message = `${message.replace(/[.\s]+$/, "")}, retry after ${res.retryAfter} s.`;
  }
  error.textContent = message;
}

// ---------------------------------------------------------------------------
// Job page
// ---------------------------------------------------------------------------

const backLink = () => el("p", { class: "back" }, el("a", { href: "#/" }, "Back to all jobs"));

async function enterJob(id, moveFocus) {
  const token = state.viewToken;
  const job = {
    id,
    data: null,          // last V1Job rendered
    source: null,        // per-job EventSource
    lastEventId: 0,      // highest log event id shown
    streamDone: false,   // saw the terminal event
    reopenTimer: null,
    backoff: 2000,
    resultRequested: false,
    cancelButton: el("button", { type: "button", id: "cancel-job", class: "button danger", onclick: cancelJob }, "Cancel"),
    rerunButton: el("button", { type: "button", id: "run-again", class: "button", onclick: rerunJob }, "Run again"),
    errorBox: el("div", { id: "job-error", class: "error-box job-error", role: "alert" }),
    cancelledNote: el("p", { class: "note note-cancelled" }, "Cancelled"),
    cancelRequestedNote: el("p", { class: "note" }, "Cancellation requested; waiting for the worker to stop."),
  };
  state.job = job;

  const view = $("job-view");
  view.replaceChildren(backLink(), el("p", { class: "muted" }, "Loading job…"));
  const res = await api(jobApi(id));
  if (token !== state.viewToken) return;

  if (!res.ok) {
    document.title = "Reelay";
    const heading = el("h2", { tabindex: -1 }, res.status === 404 ? "No such job" : "Could not load the job");
    const retry = el("button", { type: "button", class: "button", onclick: () => route(false) }, "Try again");
    view.replaceChildren(backLink(), el("section", { class: "card" },
      heading,
      res.status === 404 ? el("p", {}, "There is no job with this id. ", el("a", { href: "#/" }, "Go back to the job list.")) : el("p", { text: res.message }),
      res.status === 404 ? null : retry));
    if (moveFocus) heading.focus();
    return;
  }

  buildJobView(view);
  renderJob(res.data);
  openJobStream(job);
  if (moveFocus) $("job-title").focus();
}

function leaveJob() {
  const job = state.job;
  if (!job) return;
  if (job.source) job.source.close();
  clearTimeout(job.reopenTimer);
  state.job = null;
  $("job-view").replaceChildren();
}

// The static frame of the job page; renderJob() fills it.
function buildJobView(view) {
  const levelSelect = el("select", { id: "log-level", onchange: onLogLevelChange },
    el("option", { value: "all" }, "All"),
    el("option", { value: "success" }, "Success and above"),
    el("option", { value: "warning" }, "Warnings and errors"),
    el("option", { value: "error" }, "Errors only"));

  view.replaceChildren(
    backLink(),
    el("section", { class: "card job-head", "aria-labelledby": "job-title" },
      el("h2", { id: "job-title", tabindex: -1 }),
      el("div", { class: "progress-line" },
        el("span", { id: "job-status", class: "badge" }),
        el("progress", { id: "job-progress", max: 100, value: 0, "aria-label": "Overall progress" }),
        el("span", { id: "job-percent" })),
      el("p", { id: "job-stage", class: "muted" }),
      el("div", { id: "job-notes" }),
      el("div", { id: "job-actions", class: "actions" }),
      el("p", { id: "action-error", class: "error-box", role: "alert" }),
      el("dl", { id: "job-meta", class: "meta" })),
    el("div", { id: "result-area", class: "result-area" }),
    el("div", { class: "job-columns" },
      el("section", { class: "card", "aria-labelledby": "stages-title" },
        el("h3", { id: "stages-title" }, "Stages"),
        el("ol", { id: "stages", class: "stages" })),
      el("section", { class: "card", "aria-labelledby": "log-title" },
        el("div", { class: "log-head" },
          el("h3", { id: "log-title" }, "Log"),
          el("div", { class: "filter" }, el("label", { for: "log-level" }, "Show"), levelSelect)),
        el("ol", { id: "log", class: "log", tabindex: 0, "aria-labelledby": "log-title" }))));
}

function renderJob(data) {
  const job = state.job;
  if (!job) return;
  job.data = data;
  const status = data.status;
  const title = jobTitle(data);
  document.title = `${title} - Reelay`;

  $("job-title").textContent = title;
  setStatus($("job-status"), status);
  const percent = clampPercent(data.progress_percent);
  $("job-progress").value = percent;
  $("job-percent").textContent = `${Math.round(percent)}%`;
  $("job-stage").textContent = data.current_stage && ACTIVE.has(status) ? `Current stage: ${data.current_stage}` : "";

  // Notes: failure box, cancelled note, pending cancellation.
  const notes = $("job-notes");
  job.errorBox.textContent = data.error || "The job failed.";
  toggleChild(notes, job.errorBox, status === "failed");
  toggleChild(notes, job.cancelledNote, status === "cancelled");
  toggleChild(notes, job.cancelRequestedNote, ACTIVE.has(status) && !!data.cancel_requested);

  // Buttons: Cancel while active, Run again once finished.
  const actions = $("job-actions");
  toggleChild(actions, job.cancelButton, ACTIVE.has(status));
  toggleChild(actions, job.rerunButton, FINISHED.has(status));
  if (!job.cancelBusy) job.cancelButton.disabled = !!data.cancel_requested;

  fillDl($("job-meta"), [
    ["Job id", data.job_id],
    ["Created", fmtDateTime(data.created_at)],
    ["Started", fmtDateTime(data.started_at)],
    ["Finished", fmtDateTime(data.completed_at)],
    ["Request id", data.request_id],
  ]);

  renderStages(Array.isArray(data.stages) ? data.stages : []);

  if (status === "completed" && !job.resultRequested) {
    job.resultRequested = true;
    showVideo(job);
    loadResult(job);
  }
}

// Stage timeline, updated in place so running bars do not restart their animation.
function renderStages(stages) {
  const list = $("stages");
  const existing = new Map();
  for (const li of list.children) existing.set(li.dataset.stage, li);

  stages.forEach((stage, i) => {
    let li = existing.get(stage.name);
    if (!li) {
      li = el("li", { class: "stage", "data-stage": stage.name },
        el("div", { class: "stage-head" },
          el("span", { class: "stage-name", text: stage.name }),
          el("span", { class: "stage-status badge" }),
          el("span", { class: "stage-duration muted" })),
        el("progress", { class: "stage-progress", max: 100, "aria-label": `Progress of stage ${stage.name}` }),
        el("p", { class: "stage-detail" }));
    }
    fillStage(li, stage);
    if (list.children[i] !== li) list.insertBefore(li, list.children[i] || null);
  });
  while (list.children.length > stages.length) list.lastElementChild.remove();
}

// Progress events carry the stage's own fraction (`stage_progress`): the
// running stage's bar shows it; a stage that starts (again) begins at zero.
function noteStageProgress(job, event) {
  if (!event.stage) return;
  job.stageProgress = job.stageProgress || {};
  const fraction = event.payload && event.payload.stage_progress;
  if (event.kind === "start") delete job.stageProgress[event.stage];
  else if (event.type === "progress" && typeof fraction === "number") {
    job.stageProgress[event.stage] = Math.round(fraction * 100);
  } else return;
  const li = document.querySelector(`#stages .stage[data-stage="${CSS.escape(event.stage)}"]`);
  if (li && li.dataset.status === "running") fillStageBar(li, "running", null, event.stage);
}

function fillStage(li, stage) {
  const status = stage.status || "pending";
  li.dataset.status = status;
  li.querySelector(".stage-status").textContent = status;
  fillStageBar(li, status, stage.progress_percent, stage.name);

  li.querySelector(".stage-duration").textContent = fmtSeconds(stage.duration_seconds) || "";
  const detail = li.querySelector(".stage-detail");
  detail.textContent = stage.detail || "";
  detail.hidden = !stage.detail;
}

// Done/skipped full, pending empty, running at its last reported fraction
// (indeterminate, with no value, until one arrives).
function fillStageBar(li, status, percent, name) {
  const bar = li.querySelector("progress");
  const known = state.job && state.job.stageProgress && state.job.stageProgress[name];
  if (status === "running") {
    if (typeof known === "number") bar.value = known;
    else bar.removeAttribute("value");
  }
  else if (status === "done" || status === "skipped") bar.value = 100;
  else if (status === "error") bar.value = clampPercent(percent);
  else bar.value = 0;
}

async function cancelJob() {
  const job = state.job;
  if (!job) return;
  job.cancelBusy = true;
  job.cancelButton.disabled = true;
  $("action-error").textContent = "";
  const res = await api(`${jobApi(job.id)}/cancel`, { method: "POST" });
  if (state.job !== job) return;
  job.cancelBusy = false;
  if (!res.ok) {
    $("action-error").textContent = res.message;
    job.cancelButton.disabled = false;
  }
  scheduleJobRefresh(job.id);
}

async function rerunJob() {
  const job = state.job;
  if (!job) return;
  job.rerunButton.disabled = true;
  $("action-error").textContent = "";
  const res = await api(`${jobApi(job.id)}/rerun`, { method: "POST" });
  if (state.job !== job) return;
  job.rerunButton.disabled = false;
  if (res.ok && res.data && res.data.job_id) {
    location.hash = jobHash(res.data.job_id);
  } else {
    $("action-error").textContent = res.ok ? "The server answered without a job id." : res.message;
  }
}

// ---------------------------------------------------------------------------
// Video and critic's review (completed jobs)
// ---------------------------------------------------------------------------

function showVideo(job) {
  const url = withToken(`${jobApi(job.id)}/video`);
  $("result-area").replaceChildren(
    el("section", { class: "card", "aria-labelledby": "video-title" },
      el("h3", { id: "video-title" }, "Video"),
      el("video", { id: "video", controls: true, preload: "metadata", playsinline: true, src: url }),
      el("p", {}, el("a", { id: "download", class: "button", href: url, download: `reelay-${job.id}.mp4` }, "Download MP4")),
      el("dl", { id: "video-info", class: "meta" })),
    el("section", { id: "review", class: "card", "aria-labelledby": "review-title" },
      el("h3", { id: "review-title" }, "Critic's review"),
      el("p", { class: "muted" }, "Loading review…")));
}

async function loadResult(job) {
  const res = await api(`${jobApi(job.id)}/result`);
  if (state.job !== job) return;
  const review = $("review");
  if (!res.ok || !res.data) {
    review.replaceChildren(
      el("h3", { id: "review-title" }, "Critic's review"),
      el("p", { class: "error-box", text: res.message || "No result." }),
      el("button", { type: "button", class: "button", onclick: () => loadResult(job) }, "Try again"));
    return;
  }
  const result = res.data;
  const video = result.video || {};
  fillDl($("video-info"), [
    ["Duration", fmtSeconds(video.duration_seconds)],
    ["Size", fmtSize(video.width, video.height)],
    ["Frame rate", isNum(video.fps) ? `${fmtNumber(video.fps)} fps` : null],
    ["File size", fmtMegabytes(video.size_bytes)],
    ["Processing time", fmtSeconds(result.processing_time_seconds)],
  ]);
  renderReview(review, result.review, result.style_json);
}

function renderReview(section, review, style) {
  const parts = [el("h3", { id: "review-title" }, "Critic's review")];
  if (!review) {
    parts.push(el("p", { class: "muted" }, "No review was made for this video."));
  } else {
    const score = isNum(review.score) ? `${fmtNumber(review.score, 1)} / 10` : "no score";
    parts.push(el("p", { class: "score" }, "Score: ", el("strong", { id: "review-score", text: score })));
    parts.push(el("div", { class: "review-lists" },
      reviewList("Strengths", review.strengths, "strengths"),
      reviewList("Weaknesses", review.weaknesses, "weaknesses")));
    const m = review.measurements;
    if (m) {
      const dl = el("dl", { class: "meta", id: "review-measurements" });
      fillDl(dl, [
        ["Duration", fmtSeconds(m.duration)],
        ["Narration", fmtSeconds(m.narration_duration)],
        ["Audio", typeof m.has_audio === "boolean" ? (m.has_audio ? "yes" : "no") : null],
        ["Size", fmtSize(m.width, m.height)],
        ["Frame rate", isNum(m.fps) ? `${fmtNumber(m.fps)} fps` : null],
        ["Black stretches", fmtStretches(m.black_stretches)],
        ["Silent stretches", fmtStretches(m.silent_stretches)],
        ["Integrated loudness", isNum(m.integrated_loudness) ? `${m.integrated_loudness.toFixed(1)} LUFS` : null],
        ["Loudness range", isNum(m.loudness_range) ? `${m.loudness_range.toFixed(1)} LU` : null],
      ]);
      parts.push(el("h4", {}, "Measurements"), dl);
    }
  }
  if (style && typeof style === "object" && Object.keys(style).length) {
    parts.push(el("details", { class: "style-json" },
      el("summary", {}, "Style"),
      el("pre", { text: JSON.stringify(style, null, 2) })));
  }
  section.replaceChildren(...parts);
}

function reviewList(title, items, cls) {
  const list = Array.isArray(items) ? items : [];
  return el("div", { class: cls },
    el("h4", {}, title),
    list.length
      ? el("ul", {}, ...list.map((item) => el("li", { text: String(item) })))
      : el("p", { class: "muted" }, "None noted."));
}

// ---------------------------------------------------------------------------
// Per-job log stream (GET /api/jobs/<id>/events)
// ---------------------------------------------------------------------------

function openJobStream(job) {
  const base = `/api/jobs/${encodeURIComponent(job.id)}/events`;
  // A fresh EventSource has no Last-Event-ID, so resume with ?after= instead.
  const source = new EventSource(withToken(job.lastEventId > 0 ? `${base}?after=${job.lastEventId}` : base));
  job.source = source;

  source.onopen = () => { job.backoff = 2000; };
  source.onmessage = (message) => onJobEvent(job, message);
  source.onerror = () => {
    if (job.source !== source || source.readyState !== EventSource.CLOSED) return;
    // The browser gave up (an error status, or 204 after the end). Check the
    // job; if it is still not finished, reopen from the last event shown.
    job.source = null;
    if (job.streamDone || state.job !== job) return;
    scheduleJobRefresh(job.id);
    job.reopenTimer = setTimeout(() => {
      job.reopenTimer = null;
      if (state.job === job && !job.streamDone && !(job.data && FINISHED.has(job.data.status))) openJobStream(job);
    }, job.backoff);
    job.backoff = Math.min(job.backoff * 2, 30000);
  };
}

function onJobEvent(job, message) {
  if (state.job !== job) return;
  let event;
  try { event = JSON.parse(message.data); } catch { return; }
  if (!event || typeof event !== "object") return;

  // Skip anything already shown (a reconnect resends from Last-Event-ID).
  const id = Number(event.id != null ? event.id : message.lastEventId);
  if (Number.isFinite(id) && id > 0) {
    if (id <= job.lastEventId) return;
    job.lastEventId = id;
  }

  appendLogLine(event);
  noteStageProgress(job, event);
  if (event.type === "progress" || REFRESH_KINDS.has(event.kind)) scheduleJobRefresh(job.id);
  if (TERMINAL_KINDS.has(event.kind)) {
    job.streamDone = true;
    if (job.source) job.source.close();
    job.source = null;
  }
}

function appendLogLine(event) {
  const log = $("log");
  if (!log) return;
  const level = LEVELS.includes(event.level) ? event.level : "info";
  let text = event.message || "";
  if (!text && event.type === "progress" && event.payload && isNum(event.payload.progress)) {
    text = `Progress ${Math.round(event.payload.progress * 100)}%`;
  }
  // Follow the bottom unless the user has scrolled up.
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 32;
  log.append(el("li", { class: `log-line level-${level}`, "data-event-id": event.id },
    el("time", {
      class: "log-time",
      datetime: isNum(event.timestamp) ? new Date(event.timestamp * 1000).toISOString() : null,
    }, fmtClock(event.timestamp)),
    " ", // spaces keep copied text readable; the layout comes from CSS
    el("span", { class: "log-level-word" }, level),
    " ",
    event.stage ? el("span", { class: "log-stage", text: event.stage }) : null,
    event.stage ? " " : null,
    el("span", { class: "log-message", text })));
  if (atBottom) log.scrollTop = log.scrollHeight;
}

// Minimum-severity filter: a class on the list hides lower levels via CSS.
function onLogLevelChange(event) {
  const log = $("log");
  for (const level of LEVELS) log.classList.remove(`min-${level}`);
  if (LEVELS.includes(event.target.value)) log.classList.add(`min-${event.target.value}`);
  log.scrollTop = log.scrollHeight;
}

// ---------------------------------------------------------------------------
// Start-up
// ---------------------------------------------------------------------------

function init() {
  $("key-form").addEventListener("submit", onSaveKey);
  $("forget-key").addEventListener("click", onForgetKey);
  $("submit-form").addEventListener("submit", onSubmit);
  $("mode-topic").addEventListener("change", onModeChange);
  $("mode-script").addEventListener("change", onModeChange);
  $("state-filter").addEventListener("change", (event) => {
    state.list.status = event.target.value;
    state.list.page = 1;
    loadList();
  });
  $("prev-page").addEventListener("click", () => {
    if (state.list.page > 1) { state.list.page -= 1; loadList(); }
  });
  $("next-page").addEventListener("click", () => {
    state.list.page += 1;
    loadList();
  });
  window.addEventListener("hashchange", () => route(true));

  updateForgetButton();
  onModeChange();
  openGlobalStream();
  loadVoices();
  route(false);
}

init();
