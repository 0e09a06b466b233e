/* The ticket workspace in the agent console (issue 15 item 8).
 *
 * A list with saved views (open, mine, unassigned, all), a priority filter and search (T-42 or
 * words of the subject and text), a detail with the moves the lifecycle allows now (the
 * ticket's `allowed_moves`, from the table in helpdesk/tickets.py: the page keeps no copy),
 * priority, internal notes and the timeline; bulk priority and resolve-and-close; and the
 * command box ("close T-42, T-43: fixed the config"), which shows the plan and applies it on
 * a second click. Bulk actions go through the same commands (POST /v1/tickets/commands), so a
 * ticket the lifecycle refuses is reported per ticket and the rest are applied.
 */
(function () {
  "use strict";

  var OPEN = ["new", "triage", "in_progress", "waiting_customer", "waiting_internal", "pending_release"];
  var me = {};
  var current = null;
  var pending = null; // the command text whose plan is shown, applied on "Apply"

  function $(id) {
    return document.getElementById(id);
  }

  function api(method, path, body) {
    return window.deskgraphConsole.api(method, path, body);
  }

  function say(text) {
    $("tickets-status").textContent = text;
    $("tickets-status").hidden = !text;
  }

  function words(status) {
    return String(status || "").replace(/_/g, " ");
  }

  function query() {
    var q = new URLSearchParams();
    var view = $("tickets-view").value;
    if (view !== "all") OPEN.forEach(function (s) { q.append("status", s); });
    if (view === "mine" && me.user) q.set("assignee_id", me.user.id);
    if (view === "unassigned") q.set("unassigned", "true");
    if ($("tickets-priority").value) q.set("priority", $("tickets-priority").value);
    if ($("tickets-q").value.trim()) q.set("q", $("tickets-q").value.trim());
    return q;
  }

  var loading = 0; // the latest load: an older answer arriving after a newer one is dropped

  async function load() {
    say("");
    var mine = ++loading;
    try {
      var page = await api("GET", "/v1/tickets?" + query().toString());
      if (mine !== loading) return;
      list(page.items);
    } catch (err) {
      say("The tickets could not be loaded: " + err.message);
    }
  }

  function cell(text) {
    var td = document.createElement("td");
    td.textContent = text;
    return td;
  }

  function list(items) {
    var body = $("tickets-list");
    body.textContent = "";
    items.forEach(function (t) {
      var tr = document.createElement("tr");
      var pick = document.createElement("td");
      var box = document.createElement("input");
      box.type = "checkbox";
      box.value = t.key;
      box.setAttribute("aria-label", "Select " + t.key);
      box.addEventListener("change", bulkBar);
      pick.appendChild(box);
      tr.appendChild(pick);
      var key = document.createElement("td");
      var open = document.createElement("button");
      open.type = "button";
      open.className = "quiet";
      open.textContent = t.key;
      open.addEventListener("click", function () {
        detail(t.id);
      });
      key.appendChild(open);
      tr.appendChild(key);
      tr.appendChild(cell(t.subject));
      tr.appendChild(cell(words(t.status)));
      tr.appendChild(cell(t.priority));
      body.appendChild(tr);
    });
    if (!items.length) {
      var tr = document.createElement("tr");
      var td = cell("No tickets.");
      td.colSpan = 5;
      tr.appendChild(td);
      body.appendChild(tr);
    }
    bulkBar();
  }

  function selected() {
    return Array.prototype.map.call(
      document.querySelectorAll("#tickets-list input[type=checkbox]:checked"),
      function (b) { return b.value; }
    );
  }

  function bulkBar() {
    var n = selected().length;
    $("tickets-bulk").hidden = n === 0;
    $("bulk-count").textContent = n + " selected";
  }

  async function detail(id) {
    say("");
    try {
      var t = await api("GET", "/v1/tickets/" + id);
      var timeline = await api("GET", "/v1/tickets/" + id + "/timeline");
      show(t, timeline.items);
    } catch (err) {
      say("The ticket could not be opened: " + err.message);
    }
  }

  function show(t, items) {
    current = t;
    $("ticket-detail").hidden = false;
    $("ticket-detail-title").textContent = t.key + " · " + t.subject;
    var meta = words(t.status) + " · " + t.priority + " · " + t.channel;
    if (t.category) meta += " · " + t.category;
    if (t.reopen_count) meta += " · reopened " + t.reopen_count + "×";
    $("ticket-meta").textContent = meta;
    $("ticket-priority").value = t.priority;
    suggestion(t);
    var move = $("ticket-move");
    move.textContent = "";
    var stay = document.createElement("option");
    stay.value = "";
    stay.textContent = "(stays " + words(t.status) + ")";
    move.appendChild(stay);
    t.allowed_moves.forEach(function (s) {
      var o = document.createElement("option");
      o.value = s;
      o.textContent = words(s);
      move.appendChild(o);
    });
    resolutionField();
    var ol = $("ticket-timeline");
    ol.textContent = "";
    items.forEach(function (e) {
      var li = document.createElement("li");
      var what = e.kind;
      if (e.kind === "triage" && e.detail) what += ": " + e.detail.rule_name;
      if (e.kind === "assigned" && e.detail) what += " (" + e.detail.mode + ")";
      if (e.detail && e.detail.to && e.kind !== "assigned") what += " → " + words(e.detail.to);
      if (e.detail && (e.detail.body || e.detail.text)) what += ": " + (e.detail.body || e.detail.text);
      li.textContent = new Date(e.at).toLocaleString() + " · " + e.actor + " · " + what;
      ol.appendChild(li);
    });
  }

  // The AI's suggestion (helpdesk/triage.py): what it would set that the ticket does not have
  // yet, with its confidence; accepting sets those fields like an edit by hand.
  var suggested = {};
  function suggestion(t) {
    suggested = {};
    if (t.suggested_category && t.suggested_category !== t.category) {
      suggested.category = t.suggested_category;
    }
    if (t.suggested_priority && t.suggested_priority !== t.priority) {
      suggested.priority = t.suggested_priority;
    }
    var keys = Object.keys(suggested);
    $("ticket-suggestion").hidden = keys.length === 0;
    $("ticket-suggestion-text").textContent = "AI suggests " +
      keys.map(function (k) { return k + " " + suggested[k]; }).join(", ") +
      " (" + Math.round(100 * (t.suggestion_confidence || 0)) + "% sure)";
  }

  async function acceptSuggestion() {
    if (!current || !Object.keys(suggested).length) return;
    say("");
    try {
      await api("PATCH", "/v1/tickets/" + current.id, suggested);
      await detail(current.id);
      await load();
    } catch (err) {
      say("Not saved: " + err.message);
    }
  }

  function resolutionField() {
    var needs = $("ticket-move").value === "resolved";
    document.querySelectorAll(".resolution-field").forEach(function (el) {
      el.hidden = !needs;
    });
  }

  async function save() {
    if (!current) return;
    say("");
    try {
      if ($("ticket-priority").value !== current.priority) {
        await api("PATCH", "/v1/tickets/" + current.id, { priority: $("ticket-priority").value });
      }
      var to = $("ticket-move").value;
      if (to) {
        var body = { to: to };
        if (to === "resolved") {
          body.resolution = { type: "answered_question", summary: $("ticket-resolution").value.trim() };
        }
        await api("POST", "/v1/tickets/" + current.id + "/transition", body);
      }
      await detail(current.id);
      await load();
    } catch (err) {
      say("Not saved: " + err.message); // invalid_transition names the allowed moves
    }
  }

  async function addNote() {
    var text = $("ticket-note").value.trim();
    if (!current || !text) return;
    say("");
    try {
      await api("POST", "/v1/tickets/" + current.id + "/notes", { body: text });
      $("ticket-note").value = "";
      await detail(current.id);
    } catch (err) {
      say("The note was not added: " + err.message);
    }
  }

  function outcome(answer) {
    var d = answer.data || {};
    if (answer.status === "up") return d.question || d.plan || "";
    if (answer.action === "show") {
      return d.tickets.map(function (t) { return t.number + " " + t.subject; }).join(" · ") || "No tickets.";
    }
    var results = d.results || [d];
    return results
      .map(function (r) {
        if (r.result === "ok" || answer.action === "create") return r.number + ": " + words(r.status);
        if (r.result === "nf") return r.number + ": not found";
        return r.number + ": " + r.message;
      })
      .join(" · ");
  }

  async function command(text, confirm) {
    var answer = await api("POST", "/v1/tickets/commands", { text: text, confirm: confirm });
    return answer;
  }

  async function runCommand(event) {
    event.preventDefault();
    var text = $("command-text").value.trim();
    if (!text) return;
    var box = $("command-result");
    box.textContent = "";
    try {
      var confirm = pending === text;
      var answer = await command(text, confirm);
      if (answer.status === "up" && answer.data.plan) {
        pending = text;
        box.textContent = answer.data.plan + ". Run again to apply.";
        return;
      }
      pending = null;
      box.textContent = outcome(answer);
      await load();
    } catch (err) {
      pending = null;
      box.textContent = "Not applied: " + err.message;
    }
  }

  async function bulk(text) {
    var box = $("command-result");
    try {
      box.textContent = outcome(await command(text, true));
      await load();
    } catch (err) {
      box.textContent = "Not applied: " + err.message;
    }
  }

  function showView(isOpen) {
    if (isOpen && !$("dashboard").hidden) $("dashboard-open").click();
    if (isOpen && !$("settings").hidden) $("settings-open").click();
    if (isOpen && !$("articles").hidden) $("articles-open").click();
    $("tickets").hidden = !isOpen;
    $("desk").hidden = isOpen;
    $("tickets-open").setAttribute("aria-pressed", isOpen ? "true" : "false");
    $("tickets-open").textContent = isOpen ? "Back to the desk" : "Tickets";
    if (isOpen) load();
  }

  function closeQuietly() {
    if ($("tickets").hidden) return;
    $("tickets").hidden = true;
    $("tickets-open").setAttribute("aria-pressed", "false");
    $("tickets-open").textContent = "Tickets";
  }

  document.addEventListener("deskgraph:signed-in", function (event) {
    me = event.detail || {};
    var allowed = (me.permissions || []).indexOf("ticket.read") !== -1;
    $("tickets-open").hidden = !allowed;
    $("tickets-view").querySelector("option[value=mine]").disabled = !me.user;
    if (!allowed) $("tickets").hidden = true;
  });
  document.addEventListener("deskgraph:signed-out", function () {
    $("tickets-open").hidden = true;
    $("tickets").hidden = true;
  });
  document.addEventListener("DOMContentLoaded", function () {
    $("tickets-open").addEventListener("click", function () {
      showView($("tickets").hidden);
    });
    ["dashboard-open", "settings-open", "articles-open"].forEach(function (id) {
      $(id).addEventListener("click", closeQuietly, true);
    });
    $("tickets-filter").addEventListener("submit", function (e) {
      e.preventDefault();
      load();
    });
    $("tickets-view").addEventListener("change", load);
    $("tickets-priority").addEventListener("change", load);
    $("ticket-suggestion-accept").addEventListener("click", acceptSuggestion);
    $("ticket-move").addEventListener("change", resolutionField);
    $("ticket-save").addEventListener("click", save);
    $("ticket-note-add").addEventListener("click", addNote);
    $("ticket-command").addEventListener("submit", runCommand);
    $("command-text").addEventListener("input", function () {
      pending = null;
    });
    $("bulk-priority-apply").addEventListener("click", function () {
      bulk("update " + selected().join(", ") + " to " + $("bulk-priority").value + " priority");
    });
    $("bulk-close").addEventListener("click", function () {
      var why = $("bulk-summary").value.trim() || "Closed in bulk";
      bulk("close " + selected().join(", ") + ": " + why);
    });
  });
})();
