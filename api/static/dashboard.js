/* The owner's dashboard in the agent console, for managers and admins (the role table's
 * metrics.read; the server checks it again on every call).
 *
 * Figures come from GET /v1/metrics/summary; charts are SVG drawn by the server
 * (GET /v1/metrics/chart.svg, pygal), fetched with the console's credential and shown as
 * data: images (the console's CSP allows img-src data:, and an SVG inside <img> runs no
 * script). The period is whole days in the business's time zone; by default the 30 days to
 * today. What each figure means, with its SQL: docs/metrics.md.
 *
 * Ticket figures (GET /v1/metrics/tickets) and their SLA compliance (GET /v1/metrics/sla) are
 * of the tickets opened in the period; the team filter narrows them (conversations have no
 * team: the conversation figures stay whole).
 *
 * Knowledge gaps: the period's top-question clusters the AI failed on (as last computed;
 * "Find them now" recomputes), each with a "Draft an article" button that writes the draft
 * into the review queue (articles.js), and the questions the knowledge base had nothing for.
 */
(function () {
  "use strict";

  var CARDS = [
    ["conversations", "Conversations", "count"],
    ["ai_resolution_rate", "Resolved by the AI", "ratio"],
    ["deflection_rate", "Never needed a person", "ratio"],
    ["escalation_rate", "Handed to a person", "ratio"],
    ["first_response_p50_s", "First response (median)", "seconds"],
    ["human_response_p50_s", "Time to a person (median)", "seconds"],
    ["csat_average", "CSAT (1-5)", "score"],
    ["draft_approval_rate", "Drafts sent unchanged", "ratio"],
  ];
  var TICKET_CARDS = [
    ["tickets", "Tickets", "count"],
    ["ticket_resolution_rate", "Resolved", "ratio"],
    ["ticket_first_response_p50_s", "First reply (median)", "seconds"],
    ["resolution_p50_s", "Time to resolve (median)", "seconds"],
    ["reopen_rate", "Reopened", "ratio"],
    ["ticket_csat_average", "Ticket CSAT (1-5)", "score"],
  ];
  var CHARTS = [
    ["chart-conversations", { metric: "conversations", interval: "day" }],
    ["chart-resolution", { metric: "ai_resolution_rate", interval: "day" }],
    ["chart-intents", { metric: "conversations", by: "intent" }],
    ["chart-escalations", { metric: "conversations", by: "escalation_reason" }],
  ];

  function $(id) {
    return document.getElementById(id);
  }

  function shown(value, unit) {
    if (value === null || value === undefined) return "–";
    if (unit === "ratio") return Math.round(value * 100) + "%";
    if (unit === "seconds") {
      if (value < 90) return Math.round(value) + " s";
      if (value < 5400) return Math.round(value / 60) + " min";
      return (value / 3600).toFixed(1) + " h";
    }
    if (unit === "score") return value.toFixed(2);
    return String(value);
  }

  function range() {
    var q = new URLSearchParams();
    if ($("dash-from").value) q.set("from", $("dash-from").value);
    if ($("dash-to").value) q.set("to", $("dash-to").value);
    return q;
  }

  function say(text) {
    $("dash-status").textContent = text;
    $("dash-status").hidden = !text;
  }

  function card(label, value, title) {
    var el = document.createElement("div");
    el.className = "dash-card";
    el.title = title || "";
    var v = document.createElement("span");
    v.className = "value";
    v.textContent = value;
    var l = document.createElement("span");
    l.className = "label";
    l.textContent = label;
    el.appendChild(v);
    el.appendChild(l);
    return el;
  }

  function cards(summary) {
    var box = $("dash-cards");
    box.textContent = "";
    var m = summary.metrics;
    CARDS.forEach(function (c) {
      box.appendChild(card(c[1], shown(m[c[0]], c[2]), c[0]));
    });
    box.appendChild(card("Leads", String(summary.leads_created), "leads_created"));
    box.appendChild(card("Waiting on a person now", String(summary.backlog.waiting_on_person)));
    var p = summary.period;
    $("dash-period").textContent = p.from + " to " + p.to + " (" + p.tz + ")";
    if (!$("dash-from").value) $("dash-from").value = p.from;
    if (!$("dash-to").value) $("dash-to").value = p.to;
  }

  function ticketCards(result) {
    var box = $("ticket-cards");
    box.textContent = "";
    TICKET_CARDS.forEach(function (c) {
      box.appendChild(card(c[1], shown(result.metrics[c[0]], c[2]), c[0]));
    });
  }

  // SLA compliance of the same tickets (GET /v1/metrics/sla): per target the share met of
  // those decided (met or breached), and the breaches; a card's title counts the pending.
  var SLA_TARGETS = [
    ["first_response", "First reply within SLA", "First replies late"],
    ["resolution", "Resolved within SLA", "Resolutions late"],
  ];

  function slaCards(result) {
    var box = $("sla-cards");
    box.textContent = "";
    var whole = result.whole;
    box.appendChild(card("Tickets with an SLA", String(whole.tickets), "tickets"));
    SLA_TARGETS.forEach(function (t) {
      var f = whole[t[0]];
      var counts = f.met + " met, " + f.breached + " breached, " + f.pending + " pending";
      box.appendChild(card(t[1], shown(f.rate, "ratio"), counts));
      box.appendChild(card(t[2], String(f.breached), counts));
    });
  }

  function teamRange() {
    var q = range();
    if ($("dash-team").value) q.set("team", $("dash-team").value);
    return q.toString();
  }

  async function tickets(mine) {
    var q = teamRange();
    var answers = await Promise.all([
      window.deskgraphConsole.api("GET", "/v1/metrics/tickets?" + q),
      window.deskgraphConsole.api("GET", "/v1/metrics/sla?" + q),
    ]);
    if (mine !== loading) return;
    ticketCards(answers[0]);
    slaCards(answers[1]);
  }

  async function loadTeams() {
    var select = $("dash-team");
    if (select.options.length > 1) return;
    try {
      var teams = await window.deskgraphConsole.api("GET", "/v1/admin/teams");
      (teams.items || teams).forEach(function (t) {
        var o = document.createElement("option");
        o.value = t.id;
        o.textContent = t.name;
        select.appendChild(o);
      });
    } catch (err) {
      select.disabled = true; // a role without teams.read sees every team's tickets
    }
  }

  async function text(path) {
    var headers = window.deskgraphConsole.authHeaders({});
    var response = await fetch(path, { headers: headers, credentials: "same-origin", cache: "no-store" });
    if (!response.ok) {
      var body = await response.json().catch(function () {
        return {};
      });
      throw new Error(body.message || "HTTP " + response.status);
    }
    return response.text();
  }

  async function chart(id, params, mine) {
    var q = range();
    Object.keys(params).forEach(function (k) {
      q.set(k, params[k]);
    });
    var svg = await text("/v1/metrics/chart.svg?" + q.toString());
    if (mine !== loading) return;
    var img = $(id);
    img.src = "data:image/svg+xml;base64," + btoa(unescape(encodeURIComponent(svg)));
  }

  function item(parts) {
    var li = document.createElement("li");
    parts.forEach(function (p) {
      li.appendChild(p);
    });
    return li;
  }

  function el(tag, text, className) {
    var node = document.createElement(tag);
    if (text !== undefined) node.textContent = text;
    if (className) node.className = className;
    return node;
  }

  function gapList(top) {
    var box = $("gaps-list");
    box.textContent = "";
    $("gaps-computed").textContent = top.computed_at
      ? "Last found " + new Date(top.computed_at).toLocaleString() + "."
      : "Not found for this period yet.";
    if (top.computed_at && !top.clusters.length) box.appendChild(el("li", "None: well done.", "muted"));
    top.clusters.forEach(function (c) {
      var rate = c.ai_decided ? Math.round((c.ai_resolved / c.ai_decided) * 100) + "%" : "–";
      var examples = el("ul", undefined, "examples");
      c.examples.forEach(function (q) {
        examples.appendChild(el("li", q));
      });
      var draft = el("button", "Draft an article");
      draft.type = "button";
      draft.addEventListener("click", function () {
        draftFor(c, draft);
      });
      box.appendChild(
        item([
          el("strong", c.label),
          el("span", " · " + c.conversations + " conversations, " + c.needed_person + " needed a person, AI resolved " + rate, "muted"),
          examples,
          draft,
        ])
      );
    });
  }

  async function draftFor(cluster, button) {
    say("");
    try {
      var d = await window.deskgraphConsole.api("POST", "/v1/kb/drafts", { cluster_id: cluster.id });
      button.replaceWith(el("span", "Draft made: \u201c" + d.title + "\u201d is in Article drafts.", "muted"));
    } catch (err) {
      say("No draft was made: " + err.message);
    }
  }

  function missList(misses) {
    var box = $("misses-list");
    box.textContent = "";
    if (!misses.length) box.appendChild(el("li", "None in this period.", "muted"));
    misses.forEach(function (m) {
      var where = [];
      if (m.chat) where.push(m.chat + " in chat");
      if (m.search) where.push(m.search + " in search");
      box.appendChild(item([el("span", m.query), el("span", " · " + where.join(", "), "muted")]));
    });
  }

  async function gaps(mine) {
    var q = range().toString();
    var top = await window.deskgraphConsole.api("GET", "/v1/metrics/top-questions?gaps=true&" + q);
    var misses = await window.deskgraphConsole.api("GET", "/v1/metrics/kb-misses?" + q);
    if (mine !== loading) return;
    gapList(top);
    missList(misses.misses);
  }

  async function refreshGaps() {
    say("");
    $("gaps-refresh").disabled = true;
    try {
      await window.deskgraphConsole.api("POST", "/v1/metrics/top-questions/refresh?" + range().toString());
      await gaps(loading);
    } catch (err) {
      say("The top questions could not be found: " + err.message);
    } finally {
      $("gaps-refresh").disabled = false;
    }
  }

  // The latest load: a period changed while the last one was loading must not be
  // overwritten by the older answers arriving after the newer ones.
  var loading = 0;

  async function load(event) {
    if (event) event.preventDefault();
    say("");
    var mine = ++loading;
    try {
      var summary = await window.deskgraphConsole.api("GET", "/v1/metrics/summary?" + range().toString());
      if (mine !== loading) return;
      cards(summary);
      await Promise.all(
        CHARTS.map(function (c) {
          return chart(c[0], c[1], mine);
        }).concat([gaps(mine), tickets(mine), loadTeams()])
      );
    } catch (err) {
      say("The figures could not be loaded: " + err.message); // invalid_period names the field
    }
  }

  async function exportCsv() {
    say("");
    try {
      var csv = await text("/v1/metrics/export.csv?" + range().toString());
      var a = document.createElement("a");
      a.href = "data:text/csv;charset=utf-8," + encodeURIComponent(csv);
      a.download = "metrics-" + ($("dash-from").value || "") + "-" + ($("dash-to").value || "") + ".csv";
      document.body.appendChild(a);
      a.click();
      a.remove();
    } catch (err) {
      say("The export failed: " + err.message);
    }
  }

  function show(open) {
    if (open && !$("settings").hidden) $("settings-open").click(); // one view at a time
    $("dashboard").hidden = !open;
    $("desk").hidden = open;
    $("dashboard-open").setAttribute("aria-pressed", open ? "true" : "false");
    $("dashboard-open").textContent = open ? "Back to the desk" : "Dashboard";
    if (open) load();
  }

  document.addEventListener("deskgraph:signed-in", function (event) {
    var me = event.detail || {};
    var allowed = (me.permissions || []).indexOf("metrics.read") !== -1;
    $("dashboard-open").hidden = !allowed;
    if (!allowed) $("dashboard").hidden = true;
  });
  document.addEventListener("deskgraph:signed-out", function () {
    $("dashboard-open").hidden = true;
    $("dashboard").hidden = true;
  });
  document.addEventListener("DOMContentLoaded", function () {
    $("dashboard-open").addEventListener("click", function () {
      show($("dashboard").hidden);
    });
    // Opening the settings closes the dashboard first (the desk is under both).
    $("settings-open").addEventListener("click", function () {
      if (!$("dashboard").hidden) {
        $("dashboard").hidden = true;
        $("dashboard-open").setAttribute("aria-pressed", "false");
        $("dashboard-open").textContent = "Dashboard";
      }
    }, true);
    $("dashboard-form").addEventListener("submit", load);
    $("dash-export").addEventListener("click", exportCsv);
    $("gaps-refresh").addEventListener("click", refreshGaps);
  });
})();
