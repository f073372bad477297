// mhw inspector: the list (history from the store, then live), the detail, the actions.
// Everything a sender controls is put in with textContent, never as markup: the page has no
// innerHTML at all. The list is virtual: only the rows in view exist as elements, so a store
// of 100,000 requests scrolls like one of ten.
"use strict";

(() => {
  // The token is in the URL mhw printed, after "#": a fragment is never sent to a server nor
  // in a Referer, and the page itself holds no secret, so another local user who fetches it
  // learns nothing.
  const TOKEN = new URLSearchParams(location.hash.slice(1)).get("token") || "";
  const ROW_HEIGHT = 28;
  const TREE_OPEN_DEPTH = 3;
  const TREE_MAX_CHILDREN = 500;
  const TREE_MAX_BYTES = 2 * 1024 * 1024;

  const list = document.getElementById("list");
  const spacer = document.getElementById("spacer");
  const foot = document.getElementById("list-foot");
  const detailPane = document.getElementById("detail-pane");
  const liveBadge = document.getElementById("live");
  const noticeBox = document.getElementById("notice");
  const typeInput = document.getElementById("filter-type");
  const verdictInput = document.getElementById("filter-verdict");
  const textInput = document.getElementById("filter-text");

  const state = {
    rows: [], // newest first
    byId: new Map(), // a row published again (its forwards done) updates in place
    next: null,
    done: false,
    loading: false,
    generation: 0, // bumped by a new filter: answers for an older one are ignored
    selected: null,
    info: { forward_url: null, can_resign: false },
    liveCount: 0,
  };

  // small helpers

  function el(tag, className, text) {
    const element = document.createElement(tag);
    if (className) element.className = className;
    if (text !== undefined && text !== null) element.textContent = String(text);
    return element;
  }

  async function api(path, options) {
    const settings = Object.assign({ cache: "no-store", credentials: "same-origin" }, options || {});
    settings.headers = Object.assign({ "X-Mhw-Token": TOKEN }, settings.headers || {});
    const response = await fetch(path, settings);
    if (!response.ok) {
      throw new Error(`${response.status}: ${(await response.text()).trim()}`);
    }
    return response;
  }

  let noticeTimer = null;
  function notice(message) {
    noticeBox.textContent = message;
    noticeBox.hidden = false;
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(() => { noticeBox.hidden = true; }, 6000);
  }

  function shellQuote(text) {
    return /^[A-Za-z0-9_\/:.,@%+=-]+$/.test(text) ? text : `'${text.replace(/'/g, `'"'"'`)}'`;
  }

  function localTime(iso, timeOnly) {
    const moment = new Date(iso);
    if (Number.isNaN(moment.getTime())) return String(iso);
    return timeOnly ? moment.toLocaleTimeString([], { hour12: false }) : moment.toLocaleString();
  }

  function verdictClass(verification) {
    if (verification === "ok") return "good";
    if (verification === "unsigned" || verification === "unchecked") return "warn";
    return "bad";
  }

  function verdictText(verification) {
    if (verification === "ok") return "✓ signed";
    if (verification === "unsigned") return "unsigned";
    if (verification === "unchecked") return "unchecked";
    return `✗ ${verification}`;
  }

  // filters: the server's semantics (receive/inspector.py Filters), for live rows

  function globPattern(glob) {
    let pattern = "";
    for (let i = 0; i < glob.length; i++) {
      const c = glob[i];
      if (c === "*") pattern += ".*";
      else if (c === "?") pattern += ".";
      else if (c === "[") {
        const end = glob.indexOf("]", i + 2);
        if (end < 0) { pattern += "\\["; continue; }
        let body = glob.slice(i + 1, end).replace(/\\/g, "\\\\");
        if (body[0] === "!") body = "^" + body.slice(1);
        pattern += `[${body}]`;
        i = end;
      } else pattern += c.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    }
    return new RegExp(`^${pattern}$`, "s");
  }

  function currentFilters() {
    const type = typeInput.value.trim();
    return { type, verdict: verdictInput.value, text: textInput.value.trim(),
      typePattern: type ? globPattern(type) : null };
  }
  let filters = currentFilters();

  function matches(row) {
    const valid = row.verification === "ok" && !(row.findings && row.findings.length);
    if (filters.verdict === "invalid" && valid) return false;
    if (filters.verdict && filters.verdict !== "invalid" && row.verification !== filters.verdict) return false;
    if (filters.typePattern && !filters.typePattern.test(row.event_type || "")) return false;
    if (filters.text) {
      const wanted = filters.text.toLowerCase();
      const fields = [row.event_type, row.project_id, row.path, row.client];
      return fields.some((value) => (value || "").toLowerCase().includes(wanted)) || wanted === String(row.id);
    }
    return true;
  }

  // the list

  function resetList() {
    state.generation += 1;
    state.rows = [];
    state.byId = new Map();
    state.next = null;
    state.done = false;
    state.loading = false;
    list.scrollTop = 0;
    scheduleRender();
    loadMore();
  }

  async function loadMore() {
    if (state.loading || state.done) return;
    state.loading = true;
    const generation = state.generation;
    const query = new URLSearchParams();
    if (filters.type) query.set("type", filters.type);
    if (filters.verdict) query.set("verdict", filters.verdict);
    if (filters.text) query.set("q", filters.text);
    if (state.next !== null) query.set("before", String(state.next));
    try {
      const page = await (await api(`/api/requests?${query}`)).json();
      if (generation !== state.generation) return;
      for (const row of page.rows) {
        if (row.id !== null && state.byId.has(row.id)) continue;
        if (row.id !== null) state.byId.set(row.id, row);
        state.rows.push(row);
      }
      state.next = page.next;
      state.done = page.next === null;
    } catch (failure) {
      notice(`Cannot load the list: ${failure.message}`);
      state.done = true;
    } finally {
      if (generation === state.generation) state.loading = false;
    }
    scheduleRender();
    if (generation === state.generation && wantsMore()) loadMore();
  }

  function wantsMore() {
    const shownUpTo = (list.scrollTop + list.clientHeight * 2) / ROW_HEIGHT;
    return !state.done && shownUpTo >= state.rows.length;
  }

  let pendingLive = [];
  function addLive(row) {
    if (!matches(row)) return;
    pendingLive.push(row);
    scheduleRender();
  }

  function takeLive() {
    // Published rows arrive oldest first; the list is newest first.
    const fresh = [];
    for (const row of pendingLive) {
      const known = row.id === null ? undefined : state.byId.get(row.id);
      if (known) Object.assign(known, row);
      else {
        if (row.id !== null) state.byId.set(row.id, row);
        fresh.push(row);
      }
    }
    fresh.reverse();
    pendingLive = [];
    if (!fresh.length) return;
    state.rows = fresh.concat(state.rows);
    state.liveCount += fresh.length;
    if (list.scrollTop > 0) list.scrollTop += fresh.length * ROW_HEIGHT; // keep what is read in place
  }

  let renderQueued = false;
  function scheduleRender() {
    if (renderQueued) return;
    renderQueued = true;
    requestAnimationFrame(render);
  }

  function render() {
    renderQueued = false;
    takeLive();
    spacer.style.height = `${state.rows.length * ROW_HEIGHT}px`;
    const first = Math.max(0, Math.floor(list.scrollTop / ROW_HEIGHT) - 5);
    const last = Math.min(state.rows.length, first + Math.ceil(list.clientHeight / ROW_HEIGHT) + 10);
    const shown = document.createDocumentFragment();
    for (let index = first; index < last; index++) shown.append(rowElement(state.rows[index], index));
    for (const old of list.querySelectorAll(".row")) old.remove();
    list.append(shown);
    const count = state.rows.length.toLocaleString();
    foot.textContent = state.done ? `${count} request(s)` : `${count} request(s) loaded; scroll for older`;
    if (wantsMore()) loadMore();
  }

  function rowElement(row, index) {
    const line = el("div", "row");
    line.setAttribute("role", "option");
    line.style.top = `${index * ROW_HEIGHT}px`;
    line.dataset.index = String(index);
    if (row.id !== null) line.dataset.id = String(row.id);
    if (row.id !== null && row.id === state.selected) line.classList.add("selected");
    let event = row.event_type || `${row.method} ${row.path}`;
    line.append(el("span", "id", row.id === null ? "–" : `#${row.id}`));
    line.append(el("span", "time", localTime(row.received_at, true)));
    const eventCell = el("span", "event", event);
    if (row.retry_of !== null && row.retry_of !== undefined) {
      eventCell.append(el("span", "retry", ` retry of #${row.retry_of}`));
    }
    line.append(eventCell);
    line.append(el("span", "project", row.project_id || "–"));
    line.append(el("span", row.status === "error" ? "status bad" : "status", row.status || "–"));
    line.append(el("span", `verdict ${verdictClass(row.verification)}`, verdictText(row.verification)));
    const findings = (row.findings || []).length;
    line.append(el("span", findings ? "schema bad" : "schema good", findings ? `${findings} finding${findings === 1 ? "" : "s"}` : "ok"));
    line.append(el("span", row.response_status < 400 ? "answer good" : "answer bad", row.response_status));
    const forwards = (row.forwards || []).map((forward) => forward.status === null ? "error" : forward.status);
    line.append(el("span", "forwards", forwards.join(", ") || "–"));
    line.title = line.textContent; // what an ellipsis cut off
    return line;
  }

  list.addEventListener("scroll", scheduleRender, { passive: true });
  window.addEventListener("resize", scheduleRender);
  list.addEventListener("click", (click) => {
    const line = click.target.closest(".row");
    if (!line) return;
    const row = state.rows[Number(line.dataset.index)];
    if (row) select(row);
  });
  list.addEventListener("keydown", (key) => {
    if (key.key !== "ArrowDown" && key.key !== "ArrowUp") return;
    key.preventDefault();
    const at = state.rows.findIndex((row) => row.id === state.selected);
    const row = state.rows[Math.max(0, Math.min(state.rows.length - 1, at + (key.key === "ArrowDown" ? 1 : -1)))];
    if (row) select(row);
  });

  let filterTimer = null;
  function onFilter() {
    clearTimeout(filterTimer);
    filterTimer = setTimeout(() => { filters = currentFilters(); resetList(); }, 200);
  }
  typeInput.addEventListener("input", onFilter);
  textInput.addEventListener("input", onFilter);
  verdictInput.addEventListener("change", onFilter);
  document.getElementById("filters").addEventListener("submit", (submit) => submit.preventDefault());

  // the live feed

  function connect() {
    const source = new EventSource(`/api/stream?token=${encodeURIComponent(TOKEN)}`);
    let reconnecting = false;
    source.onopen = () => {
      liveBadge.textContent = "live";
      liveBadge.className = "live on";
      if (reconnecting) resetList(); // what arrived while disconnected is in the store
      else start();
    };
    source.onmessage = (message) => addLive(JSON.parse(message.data));
    source.addEventListener("dropped", (message) => {
      notice(`${message.data} request(s) arrived faster than this page read them: reloaded from the store.`);
      resetList();
    });
    source.onerror = () => {
      start(); // no live feed (yet): the history all the same
      reconnecting = true;
      liveBadge.textContent = "reconnecting…";
      liveBadge.className = "live off";
    };
  }

  // the detail

  async function select(row) {
    state.selected = row.id;
    scheduleRender();
    detailPane.replaceChildren(el("p", "empty", "Loading…"));
    if (row.id === null) {
      detailPane.replaceChildren(el("p", "empty", "Not stored (mhw listen --no-store): only the list line is known."));
      return;
    }
    try {
      const detail = await (await api(`/api/requests/${row.id}`)).json();
      if (state.selected === row.id) showDetail(detail);
    } catch (failure) {
      detailPane.replaceChildren(el("p", "empty", failure.message));
    }
  }

  function section(title) {
    const box = el("section", "part");
    box.append(el("h3", "", title));
    return box;
  }

  function facts(pairs) {
    const table = el("dl", "facts");
    for (const [name, value, className] of pairs) {
      table.append(el("dt", "", name));
      const cell = el("dd", className || "");
      if (value instanceof Node) cell.append(value); else cell.textContent = String(value);
      table.append(cell);
    }
    return table;
  }

  function showDetail(detail) {
    const parts = [];
    const title = el("h2", "", `Request #${detail.id}`);
    title.append(el("span", "sub", ` ${detail.event_type || `${detail.method} ${detail.path}`}`));
    parts.push(title);
    const summary = [
      ["received", localTime(detail.received_at)],
      ["from", detail.client],
      ["request", `${detail.method} ${detail.path}`],
      ["project", detail.project_id || "–"],
      ["answered", detail.response_status, detail.response_status < 400 ? "good" : "bad"],
    ];
    if (detail.retry_of !== null) {
      const link = el("button", "link", `#${detail.retry_of} (same event, same bytes)`);
      link.addEventListener("click", () => select({ id: detail.retry_of }));
      summary.push(["retry of", link]);
    }
    parts.push(facts(summary));
    parts.push(actions(detail));
    parts.push(signaturePart(detail));
    parts.push(findingsPart(detail));
    if (detail.forwards.length) parts.push(forwardsPart(detail.forwards));
    parts.push(headersPart(detail.headers));
    parts.push(bodyPart(detail));
    detailPane.replaceChildren(...parts);
    markFindings(detail.findings);
  }

  function signaturePart(detail) {
    const box = section("Signature");
    box.dataset.part = "signature";
    box.append(el("p", `verdict ${verdictClass(detail.verification)}`, verdictText(detail.verification)));
    const judged = detail.signature;
    if (!judged) {
      if (detail.verification !== "unsigned") {
        box.append(el("p", "dim", "No webhook secret here to explain the verdict: give --secret (or set it in the config)."));
      }
      return box;
    }
    box.append(el("p", "", judged.message));
    if (judged.hints.length) {
      box.append(el("h4", "", "Why"));
      const hints = el("ul", "hints");
      for (const hint of judged.hints) hints.append(el("li", "", hint));
      box.append(hints);
    }
    const pairs = [];
    if (judged.received_signature) pairs.push(["received", judged.received_signature, "mono"]);
    if (judged.expected_signature) pairs.push(["expected", judged.expected_signature, "mono"]);
    if (judged.timestamp !== null) pairs.push(["timestamp", `${judged.timestamp} (${judged.timestamp_utc || "beyond year 9999"})`, "mono"]);
    pairs.push(["secret", judged.secrets.join(", "), "mono"]);
    box.append(facts(pairs));
    return box;
  }

  function findingsPart(detail) {
    const box = section("Schema");
    if (!detail.findings.length) {
      box.append(el("p", "good", "Matches the documented schema."));
      return box;
    }
    const table = el("table", "findings");
    for (const finding of detail.findings) {
      const line = el("tr");
      const where = el("button", "link mono", finding.path);
      where.addEventListener("click", () => revealPath(finding.path));
      const cell = el("td");
      cell.append(where);
      line.append(cell, el("td", "code", finding.code), el("td", "", finding.message));
      table.append(line);
    }
    box.append(table);
    return box;
  }

  function forwardsPart(forwards) {
    const box = section("Forwarded");
    for (const forward of forwards) box.append(attempt(forward));
    return box;
  }

  function attempt(result) {
    const line = el("div", "attempt");
    line.append(el("span", "mono", result.target), " → ");
    if (result.status === null) line.append(el("span", "bad", result.error || "failed"));
    else {
      line.append(el("span", result.status < 300 ? "good" : "bad", result.status));
      if (result.latency_ms !== null) line.append(el("span", "dim", ` in ${Math.round(result.latency_ms)} ms`));
    }
    if (result.body) line.append(el("pre", "answer-body", result.body));
    return line;
  }

  function headersPart(headers) {
    const box = section(`Headers (${headers.length})`);
    const table = el("table", "headers");
    for (const [name, value] of headers) {
      const line = el("tr");
      line.append(el("th", "", name), el("td", "mono", value));
      table.append(line);
    }
    box.append(table);
    return box;
  }

  function bodyPart(detail) {
    const box = section(`Body (${detail.body_bytes.toLocaleString()} bytes${detail.body_base64 ? ", not UTF-8: base64" : ""})`);
    const raw = el("pre", "raw", detail.body);
    let tree = null;
    if (!detail.body_base64 && detail.body.length <= TREE_MAX_BYTES) {
      try { tree = el("div", "tree"); tree.append(node(null, JSON.parse(detail.body), "$", 0)); } catch (notJson) { tree = null; }
    }
    if (!tree) { box.append(raw); return box; }
    const toggle = el("button", "small", "raw");
    raw.hidden = true;
    toggle.addEventListener("click", () => {
      raw.hidden = !raw.hidden;
      tree.hidden = !raw.hidden;
      toggle.textContent = raw.hidden ? "raw" : "folded";
    });
    box.querySelector("h3").append(" ", toggle);
    box.append(tree, raw);
    return box;
  }

  function keyLabel(key) {
    return typeof key === "number" ? String(key) : JSON.stringify(key);
  }

  function node(key, value, path, depth) {
    if (value === null || typeof value !== "object") {
      const leaf = el("div", "leaf");
      leaf.dataset.path = path;
      if (key !== null) leaf.append(el("span", "key", keyLabel(key)), ": ");
      const kind = value === null ? "null" : typeof value;
      leaf.append(el("span", kind, JSON.stringify(value)));
      return leaf;
    }
    const array = Array.isArray(value);
    const entries = array ? value.map((item, index) => [index, item]) : Object.entries(value);
    const fold = el("details", "fold");
    fold.dataset.path = path;
    const head = el("summary");
    if (key !== null) head.append(el("span", "key", keyLabel(key)), ": ");
    head.append(el("span", "brace", array ? `[ ${entries.length} ]` : `{ ${entries.length} }`));
    fold.append(head);
    let filled = false;
    fold.fill = () => {
      if (filled) return;
      filled = true;
      const children = el("div", "children");
      for (const [childKey, child] of entries.slice(0, TREE_MAX_CHILDREN)) {
        const childPath = array ? `${path}[${childKey}]` : `${path}.${childKey}`;
        children.append(node(childKey, child, childPath, depth + 1));
      }
      if (entries.length > TREE_MAX_CHILDREN) {
        children.append(el("div", "dim", `… ${entries.length - TREE_MAX_CHILDREN} more (see raw)`));
      }
      fold.append(children);
    };
    fold.addEventListener("toggle", () => { if (fold.open) fold.fill(); });
    if (depth < TREE_OPEN_DEPTH) { fold.open = true; fold.fill(); }
    return fold;
  }

  function nodeAt(path) {
    return [...detailPane.querySelectorAll(".tree [data-path]")].find((found) => found.dataset.path === path);
  }

  function markFindings(findings) {
    for (const finding of findings) {
      const found = nodeAt(finding.path);
      if (found) found.classList.add("finding");
    }
  }

  function revealPath(path) {
    // Open each fold on the way: a deep node is only built once its parent opens.
    const steps = path.match(/^\$|\.[^.[]+|\[\d+\]/g) || [];
    let prefix = "";
    let found = null;
    for (const step of steps) {
      prefix += step;
      const here = nodeAt(prefix);
      if (!here) break;
      found = here;
      if (here.tagName === "DETAILS") { here.open = true; here.fill(); }
    }
    if (found) {
      found.classList.add("finding", "flash");
      found.scrollIntoView({ block: "center" });
      setTimeout(() => found.classList.remove("flash"), 1500);
    } else notice(`${path} is not in the body (a missing field)`);
  }

  // the actions

  function actions(detail) {
    const box = section("Actions");
    box.dataset.part = "actions";
    const target = el("input", "target");
    target.type = "url";
    target.placeholder = "http://127.0.0.1:8000/webhook";
    target.setAttribute("aria-label", "Replay to");
    target.value = (detail.forwards[0] && detail.forwards[0].target) || state.info.forward_url || "";
    const result = el("div", "replay-result");
    result.setAttribute("role", "status");

    function button(label, action, disabledWhy) {
      const control = el("button", "", label);
      if (disabledWhy) { control.disabled = true; control.title = disabledWhy; }
      control.addEventListener("click", action);
      return control;
    }

    async function replay(resign) {
      if (!target.value.trim()) { notice("Type the URL to replay to."); target.focus(); return; }
      result.replaceChildren(el("span", "dim", "sending…"));
      try {
        const answer = await (await api(`/api/requests/${detail.id}/replay`, {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ to: target.value.trim(), resign }),
        })).json();
        result.replaceChildren(el("span", "dim", resign ? "re-signed: " : "exact bytes: "), attempt(answer));
      } catch (failure) {
        result.replaceChildren(el("span", "bad", failure.message));
      }
    }

    const row = el("div", "buttons");
    row.append(
      target,
      button("Replay", () => replay(false)),
      button("Replay re-signed", () => replay(true), state.info.can_resign ? null : "needs a webhook secret (--secret)"),
    );
    const more = el("div", "buttons");
    more.append(
      button("Copy as curl", () => copy(`${detail.curl.before_url} ${shellQuote(target.value.trim() || target.placeholder)} ${detail.curl.after_url}`, "curl command")),
      button("Copy verify command", () => copy(detail.verify_command, detail.verify_command)),
      button("Download raw", () => download(detail.id)),
    );
    box.append(row, more, result);
    return box;
  }

  async function copy(text, what) {
    try {
      await navigator.clipboard.writeText(text);
    } catch (refused) {
      const area = el("textarea");
      area.value = text;
      document.body.append(area);
      area.select();
      document.execCommand("copy");
      area.remove();
    }
    notice(`Copied: ${what}`);
  }

  async function download(id) {
    try {
      const blob = await (await api(`/api/requests/${id}/raw`)).blob();
      const link = el("a");
      link.href = URL.createObjectURL(blob);
      link.download = `mhw-request-${id}.http`;
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 10000);
    } catch (failure) {
      notice(`Cannot download: ${failure.message}`);
    }
  }

  // start: the feed first, then the history, so that nothing falls between the two

  let started = false;
  function start() {
    if (started) return;
    started = true;
    loadMore();
  }
  api("/api/info").then((answer) => answer.json()).then((info) => { state.info = info; }).catch(() => {});
  connect();
})();
