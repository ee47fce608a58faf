// forgehand's dashboard: renders what the server sends over server-sent
// events. Every fact goes into the page as text (textContent), never as
// HTML: titles, reasons, journal lines and pane text are other people's.
"use strict";

(function () {
  // Server clock minus ours, so ages are the server's.
  let skew = 0;

  function el(tag, className, text) {
    const e = document.createElement(tag);
    if (className) e.className = className;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function link(href, text) {
    const a = el("a", null, text);
    a.href = href;
    return a;
  }

  // Only web addresses become links.
  function safeUrl(url) {
    return typeof url === "string" && /^https?:\/\//i.test(url) ? url : null;
  }

  function age(since) {
    const s = Math.max(0, Math.floor((Date.now() + skew - Date.parse(since)) / 1000));
    if (s < 60) return s + "s";
    if (s < 3600) return Math.floor(s / 60) + "m";
    if (s < 86400) return Math.floor(s / 3600) + "h" + String(Math.floor((s % 3600) / 60)).padStart(2, "0") + "m";
    return Math.floor(s / 86400) + "d" + Math.floor((s % 86400) / 3600) + "h";
  }

  function ageCell(since) {
    const span = el("span", "age", age(since));
    span.dataset.since = since;
    span.title = since;
    return span;
  }

  function refreshAges() {
    for (const span of document.querySelectorAll(".age[data-since]")) {
      span.textContent = age(span.dataset.since);
    }
  }

  function number(n) {
    return Number(n).toLocaleString("en");
  }

  function tokens(t) {
    if (!t) return "–";
    return number(t.input + t.output + t.cache_creation + t.cache_read);
  }

  function spend(issue) {
    const t = tokens(issue.tokens);
    return issue.cost_usd == null ? t : t + " · $" + issue.cost_usd.toFixed(2);
  }

  function tokensTitle(t) {
    if (!t) return "unknown";
    return "in " + number(t.input) + ", out " + number(t.output) +
      ", cache written " + number(t.cache_creation) + ", cache read " + number(t.cache_read);
  }

  function issuePath(project, key) {
    return "/issue/" + encodeURIComponent(project) + "/" + encodeURIComponent(key);
  }

  function firstLine(text, max) {
    const line = String(text).split("\n")[0];
    return line.length > max ? line.slice(0, max - 1) + "…" : line;
  }

  function stageCell(issue) {
    const td = el("td");
    td.dataset.label = "stage";
    td.append(el("span", "stage stage-" + issue.status, issue.stage));
    if (issue.waiting) td.append(el("span", "waiting", "waiting for " + issue.waiting));
    if (issue.status !== "active") td.append(el("span", "status", issue.status));
    return td;
  }

  function cell(label, content) {
    const td = el("td");
    td.dataset.label = label;
    if (content instanceof Node) td.append(content);
    else td.textContent = content === null || content === undefined ? "–" : String(content);
    return td;
  }

  function prLink(issue) {
    if (issue.pr === null || issue.pr === undefined) return "–";
    const url = safeUrl(issue.pr_url);
    return url ? link(url, "#" + issue.pr) : "#" + issue.pr;
  }

  function renderRow(issue) {
    const tr = el("tr");
    tr.dataset.issue = issue.project + "/" + issue.key;
    const name = el("td", "issue");
    name.dataset.label = "issue";
    name.append(link(issuePath(issue.project, issue.key), /^\d+$/.test(issue.key) ? "#" + issue.key : issue.key));
    name.append(el("span", "title", issue.title));
    tr.append(name, stageCell(issue));
    tr.append(cell("in stage", ageCell(issue.stage_since)));
    tr.append(cell("PR", prLink(issue)));
    tr.append(cell("CI", issue.ci_attempts));
    tr.append(cell("reviews", issue.review_rounds));
    const tok = cell("tokens", spend(issue));
    tok.title = tokensTitle(issue.tokens);
    tr.append(tok);
    const notes = el("td", "notes");
    notes.dataset.label = "latest";
    if (issue.reason) notes.append(el("p", "reason", issue.reason));
    const recent = el("ul", "recent");
    for (const e of issue.recent) {
      const li = el("li");
      li.append(el("span", "kind", e.kind), document.createTextNode(" " + firstLine(e.detail, 160)));
      li.title = e.at;
      recent.append(li);
    }
    notes.append(recent);
    tr.append(notes);
    return tr;
  }

  function renderProject(project) {
    const section = el("section", "project");
    section.dataset.project = project.name;
    const h2 = el("h2", null, project.name);
    if (project.forge) h2.append(el("span", "muted", " " + project.forge));
    section.append(h2);
    if (project.quota) {
      const q = project.quota;
      section.append(el("p", "quota", "forge quota: " + number(q.remaining) +
        (q.limit !== null ? "/" + number(q.limit) : "") + " requests left until " + q.reset_at));
    }
    if (project.issues.length === 0) {
      section.append(el("p", "empty", "No issues held."));
      return section;
    }
    const table = el("table", "issues");
    const head = el("tr");
    for (const h of ["issue", "stage", "in stage", "PR", "CI", "reviews", "tokens", "latest"]) {
      head.append(el("th", null, h));
    }
    const thead = el("thead");
    thead.append(head);
    table.append(thead);
    const body = el("tbody");
    for (const issue of project.issues) body.append(renderRow(issue));
    table.append(body);
    section.append(table);
    return section;
  }

  function renderOverview(data) {
    const main = document.getElementById("projects");
    const sections = data.projects.map(renderProject);
    if (sections.length === 0) sections.push(el("p", "empty", "No projects."));
    main.replaceChildren(...sections);
  }

  function fact(dl, name, value, id) {
    dl.append(el("dt", null, name));
    const dd = el("dd");
    if (id) dd.id = id;
    if (value instanceof Node) dd.append(value);
    else dd.textContent = value === null || value === undefined ? "–" : String(value);
    dl.append(dd);
  }

  function renderIssue(issue) {
    const heading = document.getElementById("heading");
    const facts = document.getElementById("facts");
    const journal = document.getElementById("journal");
    if (issue.missing) {
      heading.textContent = "forgehand holds no such issue";
      facts.replaceChildren();
      journal.replaceChildren();
      return;
    }
    heading.textContent = issue.project + " " + (/^\d+$/.test(issue.key) ? "#" + issue.key : issue.key) + ": " + issue.title;
    document.title = "forgehand: " + issue.project + " " + issue.key;
    const dl = el("dl");
    fact(dl, "stage", issue.stage, "stage");
    fact(dl, "status", issue.status);
    fact(dl, "waiting for", issue.waiting);
    fact(dl, "in stage", ageCell(issue.stage_since));
    fact(dl, "claimed", ageCell(issue.claimed_at));
    fact(dl, "pull request", prLink(issue));
    fact(dl, "CI attempts", issue.ci_attempts);
    fact(dl, "review rounds", issue.review_rounds);
    const tok = el("span", null, spend(issue));
    tok.title = tokensTitle(issue.tokens);
    fact(dl, "tokens", tok);
    if (issue.reason) fact(dl, "reason", issue.reason, "reason");
    fact(dl, "session", issue.session);
    facts.replaceChildren(...dl.childNodes);
    const items = issue.recent.map(function (e) {
      const li = el("li");
      li.append(el("time", null, e.at.replace("T", " ").replace(/\..*$/, "")), el("span", "kind", e.kind), el("pre", "detail", e.detail));
      return li;
    });
    journal.replaceChildren(...items.reverse());
  }

  function renderPane(pane) {
    document.getElementById("pane").textContent = pane.live ? pane.text : "";
    document.getElementById("pane-state").textContent = pane.live ? "(live)" : "(no live session)";
  }

  function connect(url, handlers) {
    // What the server put in the page: shown before the first event.
    const first = JSON.parse(document.getElementById("first-paint").textContent || "{}");
    for (const name of Object.keys(handlers)) {
      if (first[name]) {
        skew = Date.parse(first[name].now) - Date.now();
        handlers[name](first[name].data);
      }
    }
    const state = document.getElementById("connection");
    const source = new EventSource(url);
    source.onopen = function () {
      state.textContent = "live";
      state.className = "connection live";
    };
    source.onerror = function () {
      state.textContent = "reconnecting…";
      state.className = "connection down";
    };
    for (const name of Object.keys(handlers)) {
      source.addEventListener(name, function (ev) {
        const msg = JSON.parse(ev.data);
        skew = Date.parse(msg.now) - Date.now();
        handlers[name](msg.data);
      });
    }
  }

  const page = document.body.dataset.page;
  if (page === "overview") {
    connect("/events", { overview: renderOverview });
  } else if (page === "issue") {
    const parts = location.pathname.split("/");
    const project = decodeURIComponent(parts[2] || "");
    const key = decodeURIComponent(parts[3] || "");
    connect("/events/issue/" + encodeURIComponent(project) + "/" + encodeURIComponent(key), {
      issue: renderIssue,
      pane: renderPane,
    });
  }
  setInterval(refreshAges, 1000);
})();
