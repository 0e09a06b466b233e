/* Article drafts in the agent console: the knowledge base's review queue (issue 17 item 5).
 *
 * Everyone on the desk (kb.draft) reads, edits and sends drafts for review; approving,
 * publishing and rejecting are a manager's (kb.review). The buttons are the moves the server
 * says this person may make from the draft's state (the draft's `moves`, from the table in
 * helpdesk/kb_drafts.py), so the page never keeps a second copy of the rules; the server checks
 * every move again. Publishing indexes the article at once.
 */
(function () {
  "use strict";

  var LABELS = {
    in_review: "Send for review",
    draft: "Back to draft",
    approved: "Approve",
    published: "Publish",
    rejected: "Reject",
  };
  var STATES = {
    draft: "Draft",
    in_review: "In review",
    approved: "Approved",
    published: "Published",
    rejected: "Rejected",
  };
  var EDITABLE = { draft: true, in_review: true };
  var current = null;

  function $(id) {
    return document.getElementById(id);
  }

  function say(text) {
    $("articles-status").textContent = text;
    $("articles-status").hidden = !text;
  }

  function api(method, path, body) {
    return window.deskgraphConsole.api(method, path, body);
  }

  var loading = 0; // the latest load: an older answer arriving after a newer one is dropped

  async function load() {
    say("");
    var state = $("articles-state").value;
    var mine = ++loading;
    try {
      var drafts = await api("GET", "/v1/kb/drafts" + (state ? "?state=" + state : ""));
      if (mine !== loading) return;
      list(drafts);
    } catch (err) {
      say("The drafts could not be loaded: " + err.message);
    }
  }

  function list(drafts) {
    var box = $("articles-list");
    box.textContent = "";
    if (!drafts.length) {
      var empty = document.createElement("li");
      empty.className = "muted";
      empty.textContent = "Nothing here.";
      box.appendChild(empty);
    }
    drafts.forEach(function (d) {
      var li = document.createElement("li");
      var b = document.createElement("button");
      b.type = "button";
      b.className = "quiet";
      b.textContent = d.title;
      b.setAttribute("data-draft-id", d.id);
      b.addEventListener("click", function () {
        open(d);
      });
      var tag = document.createElement("span");
      tag.className = "muted";
      tag.textContent = " " + STATES[d.state] + (d.kind === "update" ? " · update of " + d.target_source_id : "");
      li.appendChild(b);
      li.appendChild(tag);
      box.appendChild(li);
    });
  }

  function open(d) {
    current = d;
    $("article-editor").hidden = false;
    var meta = STATES[d.state] + " · by " + d.created_by;
    if (d.confidence !== null && d.confidence !== undefined) meta += " · confidence " + d.confidence.toFixed(2);
    if (d.visibility === "internal") meta += " · internal (staff only)";
    if (d.kind === "update") meta += " · a section for the article " + d.target_source_id;
    if (d.published_source_id) meta += " · published as " + d.published_source_id;
    $("article-meta").textContent = meta;
    $("article-title").value = d.title;
    $("article-body").value = d.body;
    var editable = !!EDITABLE[d.state];
    $("article-title").readOnly = !editable;
    $("article-body").readOnly = !editable;
    var actions = $("article-actions");
    actions.textContent = "";
    if (editable) actions.appendChild(button("Save", save, "primary"));
    d.moves.forEach(function (to) {
      actions.appendChild(
        button(LABELS[to] || to, function () {
          move(to);
        })
      );
    });
  }

  function button(label, onClick, className) {
    var b = document.createElement("button");
    b.type = "button";
    b.textContent = label;
    if (className) b.className = className;
    b.addEventListener("click", onClick);
    return b;
  }

  function changes() {
    var out = {};
    if ($("article-title").value !== current.title) out.title = $("article-title").value;
    if ($("article-body").value !== current.body) out.body = $("article-body").value;
    return out;
  }

  async function save() {
    say("");
    var body = changes();
    if (!Object.keys(body).length) return;
    try {
      open(await api("PATCH", "/v1/kb/drafts/" + current.id, body));
      await load();
    } catch (err) {
      say("Not saved: " + err.message);
    }
  }

  async function move(to) {
    say("");
    try {
      // Unsaved edits go with a move out of review, so what is approved is what was read.
      var body = EDITABLE[current.state] ? changes() : {};
      if (Object.keys(body).length) current = await api("PATCH", "/v1/kb/drafts/" + current.id, body);
      open(await api("POST", "/v1/kb/drafts/" + current.id + "/move", { to: to }));
      await load();
    } catch (err) {
      say("Not moved: " + err.message); // 409 invalid_transition names the allowed moves
    }
  }

  function show(isOpen) {
    // One view at a time: the dashboard and the settings close first (the desk is under all).
    if (isOpen && !$("dashboard").hidden) $("dashboard-open").click();
    if (isOpen && !$("settings").hidden) $("settings-open").click();
    $("articles").hidden = !isOpen;
    $("desk").hidden = isOpen;
    $("articles-open").setAttribute("aria-pressed", isOpen ? "true" : "false");
    $("articles-open").textContent = isOpen ? "Back to the desk" : "Article drafts";
    if (isOpen) load();
  }

  function closeQuietly() {
    if ($("articles").hidden) return;
    $("articles").hidden = true;
    $("articles-open").setAttribute("aria-pressed", "false");
    $("articles-open").textContent = "Article drafts";
  }

  document.addEventListener("deskgraph:signed-in", function (event) {
    var me = event.detail || {};
    var allowed = (me.permissions || []).indexOf("kb.draft") !== -1;
    $("articles-open").hidden = !allowed;
    if (!allowed) $("articles").hidden = true;
  });
  document.addEventListener("deskgraph:signed-out", function () {
    $("articles-open").hidden = true;
    $("articles").hidden = true;
  });
  document.addEventListener("DOMContentLoaded", function () {
    $("articles-open").addEventListener("click", function () {
      show($("articles").hidden);
    });
    // Opening the dashboard or the settings closes this view first.
    ["dashboard-open", "settings-open", "tickets-open"].forEach(function (id) {
      $(id).addEventListener("click", closeQuietly, true);
    });
    $("articles-state").addEventListener("change", load);
    $("articles-filter").addEventListener("submit", function (e) {
      e.preventDefault();
      load();
    });
  });
})();
