/*
 * deskgraph agent console. Plain ES2020, no dependencies, no build step.
 *
 * Staff sign in with their business (tenant), email and password: the server answers with an
 * HttpOnly session cookie this script never sees, and every request carries it. An API key
 * (ak_...) still works for integrations: it is kept in localStorage and sent as a header. The
 * queue and the open conversation stay live through GET /v1/agent/events (read with fetch);
 * when that stream is unavailable the console polls instead, so it never shows stale work for
 * long. Every action that loses a race with another agent (HTTP 409) says so plainly and
 * reloads what it shows. The contract is docs/http-api.md.
 */
(function () {
  "use strict";

  var KEY_STORE = "deskgraph.console.agentKey";
  var NAME_STORE = "deskgraph.console.agentName";
  var TENANT_STORE = "deskgraph.console.tenant";
  // Not a credential (the cookie is HttpOnly): only whether to ask the server for a session at
  // start, so a first visit makes no request that must fail.
  var SESSION_STORE = "deskgraph.console.signedIn";
  var POLL_MS = 5000;
  var RECONNECT_MAX_MS = 15000;
  var SILENCE_MS = 45000; // the server pings every 15 s
  // Hand-off reasons (graph/policy.py) in words; "kind:detail" reasons keep their detail.
  var REASONS = {
    explicit_request: "asked for a person",
    intent: "needs a person: ",
    keyword: "sensitive word: ",
    blocked_input: "message blocked: ",
    low_confidence: "the AI could not answer",
    no_progress: "no progress",
    judge_failed: "the answer failed its check twice",
    draft_rejected: "a reviewer rejected the draft",
    customer_replied: "the customer wrote again",
  };

  var $ = function (id) {
    return document.getElementById(id);
  };

  var state = {
    key: readStore(KEY_STORE), // an API key; "" when signed in with a session cookie
    name: readStore(NAME_STORE),
    me: null,
    queue: [],
    tab: "queue", // queue | mine | recent
    list: [], // the Mine / Recent list
    selected: null, // conversation id
    detail: null,
    draftFor: null, // interrupt id the draft textarea was filled for
    loading: false,
    reloadAgain: false,
  };

  function readStore(name) {
    try {
      return localStorage.getItem(name) || "";
    } catch (e) {
      return "";
    }
  }

  function writeStore(name, value) {
    try {
      if (value) localStorage.setItem(name, value);
      else localStorage.removeItem(name);
    } catch (e) {
      /* storage disabled: the agent signs in again next time */
    }
  }

  // ------------------------------------------------------------------ HTTP
  function ApiError(status, code, message) {
    this.status = status;
    this.code = code;
    this.message = message;
  }

  async function toError(response) {
    var body = null;
    try {
      body = await response.json();
    } catch (e) {
      /* a proxy's HTML error page */
    }
    return new ApiError(
      response.status,
      (body && body.code) || "http_" + response.status,
      (body && body.message) || response.statusText || "request failed"
    );
  }

  // A key travels in a header; a session is the cookie the browser sends by itself.
  function authHeaders(headers) {
    if (state.key) headers.Authorization = "Bearer " + state.key;
    return headers;
  }

  async function api(method, path, body) {
    var init = {
      method: method,
      headers: authHeaders({ Accept: "application/json" }),
      cache: "no-store",
      credentials: "same-origin",
    };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    var response;
    try {
      response = await fetch(path, init);
    } catch (e) {
      throw new ApiError(0, "network", "The server could not be reached. Check your connection.");
    }
    if (response.status === 401 || response.status === 403) {
      var err = await toError(response);
      if (response.status === 401) {
        var why = state.key ? "Your agent key was not accepted: " + err.message : "";
        if (!state.key && state.me) why = "Your session has ended: sign in again.";
        signedOut(why);
      }
      throw err;
    }
    if (!response.ok) throw await toError(response);
    return response.status === 204 ? null : response.json();
  }

  // The other console scripts (settings.js) call the API the same way: one credential, one 401.
  // dashboard.js fetches SVG charts (not JSON) with the same credential: authHeaders.
  window.deskgraphConsole = { api: api, authHeaders: authHeaders };

  // ------------------------------------------------------------------ SSE
  // The same incremental text/event-stream parser as the widget (which must stay one file).
  function SSEParser(onEvent) {
    this.buffer = "";
    this.data = [];
    this.event = "";
    this.onEvent = onEvent;
  }
  SSEParser.prototype.feed = function (chunk) {
    this.buffer += chunk;
    var re = /\r\n|\r|\n/g;
    var start = 0;
    var match;
    while ((match = re.exec(this.buffer))) {
      if (match[0] === "\r" && match.index === this.buffer.length - 1) break;
      this.line(this.buffer.slice(start, match.index));
      start = re.lastIndex;
    }
    this.buffer = this.buffer.slice(start);
  };
  SSEParser.prototype.line = function (line) {
    if (line === "") {
      if (this.data.length) this.onEvent({ event: this.event || "message", data: this.data.join("\n") });
      this.data = [];
      this.event = "";
      return;
    }
    if (line.charAt(0) === ":") return;
    var colon = line.indexOf(":");
    var field = colon < 0 ? line : line.slice(0, colon);
    var value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "data") this.data.push(value);
    else if (field === "event") this.event = value;
  };

  var live = { controller: null, timer: null, poll: null, silence: null, attempt: 0, stopped: true };

  function startLive() {
    live.stopped = false;
    connectLive();
  }

  function stopLive() {
    live.stopped = true;
    clearTimeout(live.timer);
    clearTimeout(live.silence);
    stopPolling();
    if (live.controller) live.controller.abort();
    live.controller = null;
  }

  function startPolling() {
    if (live.poll) return;
    live.poll = setInterval(function () {
      refreshQueue();
      if (state.selected) reloadDetail();
    }, POLL_MS);
  }

  function stopPolling() {
    clearInterval(live.poll);
    live.poll = null;
  }

  async function connectLive() {
    if (live.stopped || live.controller) return;
    var controller = new AbortController();
    live.controller = controller;
    var watchdog = function () {
      clearTimeout(live.silence);
      live.silence = setTimeout(function () {
        controller.abort();
      }, SILENCE_MS);
    };
    try {
      var response = await fetch("/v1/agent/events", {
        headers: authHeaders({ Accept: "text/event-stream" }),
        signal: controller.signal,
        cache: "no-store",
        credentials: "same-origin",
      });
      if (response.status === 404) {
        // This server has no event stream: polling is the whole story.
        setLive("Live updates unavailable; refreshing every " + POLL_MS / 1000 + " s");
        live.controller = null;
        startPolling();
        return;
      }
      if (!response.ok) throw await toError(response);
      live.attempt = 0;
      stopPolling();
      setLive("Live");
      // Anything may have changed while we were not listening.
      refreshQueue();
      if (state.selected) reloadDetail();
      watchdog();
      var reader = response.body.getReader();
      var decoder = new TextDecoder();
      var parser = new SSEParser(onLiveEvent);
      for (;;) {
        var step = await reader.read();
        if (step.done) break;
        watchdog();
        parser.feed(decoder.decode(step.value, { stream: true }));
      }
    } catch (err) {
      if (live.stopped) return;
      if (err instanceof ApiError && err.status === 401) return;
      console.warn("agent console: live updates interrupted", err);
    } finally {
      clearTimeout(live.silence);
      if (live.controller === controller) live.controller = null;
    }
    if (live.stopped) return;
    setLive("Reconnecting…");
    startPolling(); // stay current while the stream is down
    var delay = Math.min(RECONNECT_MAX_MS, 500 * Math.pow(2, live.attempt));
    live.attempt += 1;
    live.timer = setTimeout(connectLive, delay);
  }

  function onLiveEvent(frame) {
    var data = {};
    try {
      data = JSON.parse(frame.data);
    } catch (e) {
      console.warn("agent console: ignoring a malformed event", frame);
      return;
    }
    if (frame.event === "queue.changed") {
      scheduleQueue();
    } else if (frame.event === "conversation.event") {
      scheduleQueue();
      scheduleList();
      if (data.conversation_id && data.conversation_id === state.selected) scheduleDetail();
    }
  }

  // Bursts of events (a turn writes several) become one reload.
  var queueTimer = null;
  var detailTimer = null;
  function scheduleQueue() {
    clearTimeout(queueTimer);
    queueTimer = setTimeout(refreshQueue, 120);
  }
  var listTimer = null;
  function scheduleList() {
    if (state.tab === "queue") return;
    clearTimeout(listTimer);
    listTimer = setTimeout(refreshList, 300);
  }
  function scheduleDetail() {
    clearTimeout(detailTimer);
    detailTimer = setTimeout(reloadDetail, 120);
  }

  function setLive(text) {
    $("live").textContent = text;
  }

  // ------------------------------------------------------------------ helpers
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    for (var name in attrs || {}) {
      if (name === "text") node.textContent = attrs[name];
      else if (name === "className") node.className = attrs[name];
      else if (attrs[name] !== null && attrs[name] !== undefined) node.setAttribute(name, attrs[name]);
    }
    (children || []).forEach(function (c) {
      if (c) node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return node;
  }

  function waited(since) {
    var ms = Date.now() - Date.parse(since);
    if (!isFinite(ms)) return "";
    var minutes = Math.max(0, Math.floor(ms / 60000));
    if (minutes < 1) return "just now";
    if (minutes < 60) return minutes + " min";
    var hours = Math.floor(minutes / 60);
    return hours + " h " + (minutes % 60) + " min";
  }

  function clock(iso) {
    var d = new Date(iso);
    return isNaN(d) ? "" : d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function reasonText(reason) {
    var text = reason || "";
    var cut = text.indexOf(":");
    var head = cut > 0 ? text.slice(0, cut) : text;
    var detail = cut > 0 ? text.slice(cut + 1).replace(/_/g, " ") : "";
    if (Object.prototype.hasOwnProperty.call(REASONS, head)) return REASONS[head] + detail;
    return text.replace(/_/g, " ");
  }

  function showConvAlert(text) {
    $("conv-alert").textContent = text || "";
    $("conv-alert").hidden = !text;
  }

  // A 409 means another agent (or this one, in another tab) acted first: say so, then show
  // the conversation as it is now.
  function actionFailed(err) {
    if (err instanceof ApiError && err.status === 409) {
      var text =
        err.code === "interrupt_conflict" || err.code === "already_handled"
          ? "Someone else already handled this. The view has been refreshed."
          : err.message + " The view has been refreshed.";
      showConvAlert(text);
      refreshQueue();
      reloadDetail();
      return;
    }
    if (!(err instanceof ApiError && err.status === 401)) showConvAlert(err.message || String(err));
  }

  // ------------------------------------------------------------------ sign in / out
  function showSignin(message) {
    $("signin").hidden = false;
    $("signin-form").hidden = false;
    $("reset-form").hidden = true;
    $("desk").hidden = true;
    $("signout").hidden = true;
    $("presence").hidden = true;
    document.querySelector(".presence-label").hidden = true;
    $("whoami").textContent = "";
    $("signin-error").textContent = message || "";
    $("signin-error").hidden = !message;
    if (!$("tenant").value) $("tenant").value = initialTenant();
    ($("tenant").value ? $("email") : $("tenant")).focus();
  }

  // ?tenant= in the URL (a link from an admin), else the business last signed in to.
  function initialTenant() {
    var fromUrl = new URLSearchParams(location.search).get("tenant");
    return (fromUrl || readStore(TENANT_STORE) || "").trim().toLowerCase();
  }

  function showDesk() {
    $("signin").hidden = true;
    $("desk").hidden = false;
    $("signout").hidden = false;
    var me = state.me || {};
    var user = me.user;
    $("whoami").textContent = user
      ? "Signed in as " + user.name + " (" + me.role + ")"
      : "Signed in as " + state.name;
    $("whoami").title = user ? user.email + " · " + me.tenant : "API key · " + (me.tenant || "");
    $("presence").hidden = !user;
    document.querySelector(".presence-label").hidden = !user;
    if (user) $("presence").value = me.presence || "online";
    // settings.js shows its page to those whose role may edit the profile
    document.dispatchEvent(new CustomEvent("deskgraph:signed-in", { detail: me }));
    startLive();
    refreshQueue();
  }

  // After sign-out or when the server refused the credential: forget it, show the form.
  function signedOut(message) {
    stopLive();
    state.key = "";
    state.me = null;
    state.selected = null;
    state.detail = null;
    writeStore(KEY_STORE, "");
    writeStore(SESSION_STORE, "");
    setLive("");
    document.dispatchEvent(new CustomEvent("deskgraph:signed-out"));
    showSignin(message);
  }

  async function signOut() {
    if (!state.key) {
      try {
        await fetch("/v1/auth/sign-out", { method: "POST", credentials: "same-origin", cache: "no-store" });
      } catch (e) {
        /* offline: the session still ends by itself */
      }
    }
    signedOut("");
  }

  // Who the credential acts as (a user's email or a key's name: what actions record).
  async function loadMe() {
    var me = await api("GET", "/v1/agent/me");
    state.me = me;
    state.name = me.name;
    writeStore(NAME_STORE, me.name);
    return me;
  }

  $("signin-form").addEventListener("submit", async function (e) {
    e.preventDefault();
    var tenant = $("tenant").value.trim().toLowerCase();
    var email = $("email").value.trim();
    var password = $("password").value;
    if (!tenant || !email || !password) {
      showSignin("Enter your business, email and password.");
      return;
    }
    var button = $("signin-submit");
    button.disabled = true;
    try {
      var response = await fetch("/v1/auth/sign-in", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ tenant: tenant, email: email, password: password }),
        credentials: "same-origin",
        cache: "no-store",
      });
      if (!response.ok) {
        var err = await toError(response);
        var wait = response.headers.get("Retry-After");
        if (err.code === "too_many_attempts") {
          showSignin("Too many failed attempts. Try again in " + (wait || "a few") + " seconds.");
        } else if (err.code === "invalid_credentials") {
          showSignin("The business, email or password is wrong.");
        } else showSignin(err.message);
        return;
      }
      state.key = "";
      writeStore(KEY_STORE, "");
      writeStore(TENANT_STORE, tenant);
      writeStore(SESSION_STORE, "1");
      $("password").value = "";
      await loadMe();
      showDesk();
    } catch (err) {
      showSignin(err.message || "The server could not be reached. Check your connection.");
    } finally {
      button.disabled = false;
    }
  });

  $("key-submit").addEventListener("click", async function () {
    var key = $("agent-key").value.trim();
    if (!key) {
      showSignin("Enter your agent key.");
      return;
    }
    state.key = key;
    try {
      // Proves the key before it is stored; the key's name is who the agent acts as.
      await loadMe();
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 401)) showSignin(err.message);
      return;
    }
    writeStore(KEY_STORE, key);
    $("agent-key").value = "";
    showDesk();
  });

  $("signout").addEventListener("click", function () {
    signOut();
  });

  $("presence").addEventListener("change", async function () {
    try {
      state.me = await api("PUT", "/v1/agent/me/presence", { status: $("presence").value });
      setLive("You are " + state.me.presence + ".");
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 401)) setLive("Status not saved: " + err.message);
    }
  });

  // A one-time reset link: /console?tenant=...#reset=pr_...
  function showReset() {
    $("signin").hidden = false;
    $("signin-form").hidden = true;
    $("reset-form").hidden = false;
    $("desk").hidden = true;
    $("new-password").focus();
  }

  $("reset-form").addEventListener("submit", async function (e) {
    e.preventDefault();
    var token = location.hash.replace(/^#reset=/, "");
    var response;
    try {
      response = await fetch("/v1/auth/reset", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ token: token, password: $("new-password").value }),
        cache: "no-store",
      });
    } catch (err) {
      $("reset-error").textContent = "The server could not be reached.";
      $("reset-error").hidden = false;
      return;
    }
    if (!response.ok) {
      var err = await toError(response);
      $("reset-error").textContent = err.message;
      $("reset-error").hidden = false;
      return;
    }
    history.replaceState(null, "", location.pathname + location.search);
    showSignin("Your password is set. Sign in with it.");
  });

  // ------------------------------------------------------------------ queue
  var queueLoading = false;
  var queueAgain = false;
  async function refreshQueue() {
    if (queueLoading) {
      queueAgain = true; // a change arrived during the load: load once more after it
      return;
    }
    queueLoading = true;
    try {
      var body = await api("GET", "/v1/agent/queue");
      state.queue = body.items || [];
      $("queue-error").hidden = true;
      renderQueue();
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 401)) {
        $("queue-error").textContent = "The queue could not be loaded: " + err.message;
        $("queue-error").hidden = false;
      }
    } finally {
      queueLoading = false;
      if (queueAgain) {
        queueAgain = false;
        refreshQueue();
      }
    }
  }

  var KINDS = { approval: "Approval", human_turn: "Customer wrote", handoff: "Hand-off" };

  function renderQueue() {
    var list = $("queue-list");
    // The list is rebuilt on every change: keep keyboard focus on the same conversation.
    var focused = list.contains(document.activeElement)
      ? document.activeElement.getAttribute("data-conversation-id")
      : null;
    list.textContent = "";
    state.queue.forEach(function (item) {
      var kind = KINDS[item.kind] || KINDS.handoff;
      var button = el(
        "button",
        {
          type: "button",
          className: "item",
          "data-conversation-id": item.conversation_id,
          "aria-current": item.conversation_id === state.selected ? "true" : null,
        },
        [
          el("span", { className: "row" }, [
            el("span", { className: "kind kind-" + (item.kind || "handoff"), text: kind }),
            item.ticket_number ? el("span", { className: "ticket", text: "#" + item.ticket_number }) : null,
            el("time", { className: "wait", datetime: item.waiting_since, "data-since": item.waiting_since, text: waited(item.waiting_since) }),
          ]),
          // People's words, each reason once (the server merges a price named four times).
          item.kind === "approval"
            ? el("span", { className: "reason", text: "Draft waiting for review" })
            : el("span", { className: "reason", text: item.reason_text || reasonText(item.reason) }),
          item.kind === "approval" && item.reason_text
            ? el("span", { className: "detail", text: item.reason_text })
            : null,
          // A held draft is about the question it answers, not the latest message.
          (item.kind === "approval" ? item.question : null) || item.last_customer_message
            ? el("span", {
                className: "last",
                text: "\u201c" + ((item.kind === "approval" && item.question) || item.last_customer_message) + "\u201d",
              })
            : null,
          item.new_messages
            ? el("span", { className: "newer", text: newerText(item.new_messages) })
            : null,
          item.owner ? el("span", { className: "owner", text: "Taken by " + item.owner }) : null,
        ]
      );
      button.addEventListener("click", function () {
        select(item.conversation_id);
      });
      list.appendChild(el("li", {}, [button]));
      if (focused === item.conversation_id) button.focus();
    });
    $("queue-count").textContent = state.queue.length ? "(" + state.queue.length + ")" : "";
    $("queue-empty").hidden = state.queue.length > 0;
  }

  function newerText(n) {
    return n + " new message" + (n > 1 ? "s" : "") + " since this draft, answered after it";
  }

  // ------------------------------------------------------------------ Mine / Recent
  // The queue only holds who waits; an agent also needs the conversations they answered
  // (owned, ticket open) and the recent ones, to find them again.
  var TABS = { queue: "tab-queue", mine: "tab-mine", recent: "tab-recent" };
  function showTab(tab) {
    state.tab = tab;
    Object.keys(TABS).forEach(function (t) {
      $(TABS[t]).setAttribute("aria-selected", t === tab ? "true" : "false");
    });
    $("queue-panel").hidden = tab !== "queue";
    $("list-panel").hidden = tab === "queue";
    $("list-panel").setAttribute("aria-labelledby", TABS[tab]);
    if (tab !== "queue") {
      state.list = [];
      renderList();
      refreshList();
    }
  }
  Object.keys(TABS).forEach(function (t) {
    $(TABS[t]).addEventListener("click", function () { showTab(t); });
  });

  async function refreshList() {
    var tab = state.tab;
    if (tab === "queue") return;
    try {
      var query = tab === "mine" ? "?owner=me&limit=100" : "?limit=50";
      var rows = await api("GET", "/v1/agent/conversations" + query);
      if (tab !== state.tab) return;
      // Mine: what is still open; closed ones stay findable under Recent.
      state.list = tab === "mine" ? rows.filter(function (c) { return c.status !== "closed"; }) : rows;
      $("list-error").hidden = true;
      renderList();
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 401)) {
        $("list-error").textContent = "The list could not be loaded: " + err.message;
        $("list-error").hidden = false;
      }
    }
  }

  var STATUS_WORDS = { active: "Active", waiting_human: "Waiting", closed: "Closed" };
  function renderList() {
    var list = $("conv-list");
    list.textContent = "";
    state.list.forEach(function (c) {
      var button = el(
        "button",
        {
          type: "button",
          className: "item",
          "data-conversation-id": c.id,
          "aria-current": c.id === state.selected ? "true" : null,
        },
        [
          el("span", { className: "row" }, [
            el("span", { className: "kind", text: STATUS_WORDS[c.status] || c.status }),
            c.ticket_number ? el("span", { className: "ticket", text: "#" + c.ticket_number }) : null,
            c.updated_at ? el("time", { className: "wait", datetime: c.updated_at, text: clock(c.updated_at) }) : null,
          ]),
          c.last_customer_message
            ? el("span", { className: "last", text: "\u201c" + c.last_customer_message + "\u201d" })
            : null,
          c.owner_agent ? el("span", { className: "owner", text: "Owner: " + c.owner_agent }) : null,
        ]
      );
      button.addEventListener("click", function () {
        select(c.id);
      });
      list.appendChild(el("li", {}, [button]));
    });
    $("list-empty").textContent =
      state.tab === "mine"
        ? "No open conversations of yours. Ones you take over or answer appear here."
        : "No conversations yet.";
    $("list-empty").hidden = state.list.length > 0;
  }

  setInterval(function () {
    document.querySelectorAll("time[data-since]").forEach(function (t) {
      t.textContent = waited(t.getAttribute("data-since"));
    });
  }, 30000);

  // ------------------------------------------------------------------ conversation
  function select(id) {
    if (state.selected !== id) {
      state.draftFor = null;
      $("reply").value = "";
      showConvAlert("");
    }
    state.selected = id;
    renderQueue();
    if (state.tab !== "queue") renderList();
    reloadDetail();
  }

  async function reloadDetail() {
    if (!state.selected) return;
    if (state.loading) {
      state.reloadAgain = true; // one more pass after the load in flight
      return;
    }
    state.loading = true;
    var id = state.selected;
    try {
      var detail = await api("GET", "/v1/agent/conversations/" + id);
      if (id === state.selected) {
        state.detail = detail;
        renderDetail();
      }
    } catch (err) {
      if (id === state.selected) actionFailed(err);
    } finally {
      state.loading = false;
      if (state.reloadAgain) {
        state.reloadAgain = false;
        reloadDetail();
      }
    }
  }

  // The API sends {interrupt_id, kind, payload}; the console reads the payload's fields
  // (draft, question, summary...) next to the id.
  function pendingOf(detail) {
    var p = detail && detail.pending;
    if (!p) return null;
    var flat = Object.assign({}, p.payload || {});
    flat.interrupt_id = p.interrupt_id;
    flat.kind = p.kind || flat.kind;
    return flat;
  }

  function renderDetail() {
    var d = state.detail;
    var conv = d.conversation || {};
    var pending = pendingOf(d);
    var handoff = d.handoff || (pending && pending.kind === "handoff" ? pending : null);
    var ticket = d.ticket || null;
    var ownedByMe = conv.owner_agent && conv.owner_agent === state.name;
    var closed = conv.status === "closed";

    $("conv-placeholder").hidden = true;
    $("conv-body").hidden = false;
    $("conv-title").textContent =
      (ticket && ticket.number ? "Ticket #" + ticket.number : "Conversation") +
      (ticket && ticket.subject ? ": " + ticket.subject : "");
    var meta = ["Status: " + (conv.status || "unknown").replace("_", " ")];
    if (conv.owner_agent) meta.push("Owner: " + conv.owner_agent);
    if (conv.channel) meta.push("Channel: " + conv.channel);
    $("conv-meta").textContent = meta.join(" · ");

    $("takeover").disabled = closed || !!ownedByMe;
    $("takeover").textContent = conv.owner_agent && !ownedByMe ? "Take over from " + conv.owner_agent : "Take over";
    $("release").disabled = closed || !(conv.owner_agent || (pending && pending.kind !== "approval"));
    $("close").disabled = closed;
    $("reply-form").hidden = closed;

    renderApproval(pending && pending.kind === "approval" ? pending : null, d);
    renderTranscript(d.messages || []);
    renderHandoff(handoff);
    renderContact(d.contact || null);
  }

  // The customer's contact beside the conversation (GET /v1/agent/contacts/{id} has the rest).
  function renderContact(c) {
    $("contact-none").hidden = !!c;
    $("contact-details").hidden = !c;
    $("contact-history").hidden = !c;
    if (!c) return;
    $("contact-name").textContent = (c.name || "(no name)") + (c.verified ? " \u2713 verified" : "");
    $("contact-email").textContent = c.email || "\u2014";
    $("contact-phone").textContent = c.phone || "\u2014";
    $("contact-org").textContent = c.organization_name || "\u2014";
    var n = c.earlier_conversations || 0;
    $("contact-history").textContent =
      n === 0 ? "First conversation" : n + " earlier conversation" + (n === 1 ? "" : "s");
  }

  function renderApproval(pending, detail) {
    var box = $("approval");
    box.hidden = !pending;
    if (!pending) {
      state.draftFor = null;
      return;
    }
    var marker = pending.interrupt_id || pending.draft;
    if (state.draftFor !== marker) {
      // A new draft: fill the editor. The same draft again (a live refresh) keeps the
      // agent's unsent edits.
      state.draftFor = marker;
      $("draft").value = pending.draft || "";
      $("reject-reason").value = "";
    }
    $("approval-question").textContent = pending.question || "";
    var because = (detail && detail.held_because) || [];
    $("approval-reasons").textContent = because.length ? "Held because: " + because.join("; ") : "";
    var newer = ((detail && detail.messages) || []).filter(function (m) { return m.after_review; }).length;
    $("approval-newer").textContent = newer ? newerText(newer) + " by the AI (or by you, if you hand off)." : "";
    $("approval-newer").hidden = !newer;
    var sources = $("draft-sources");
    sources.textContent = "";
    if ((pending.citations || []).length) {
      sourceList(sources, pending.citations, function (c) { return c.title + " (" + c.source_id + ")"; });
    } else {
      sources.textContent = "No sources cited.";
    }
    updateEditButton();
  }

  function updateEditButton() {
    var pending = pendingOf(state.detail);
    var original = (pending && pending.draft) || "";
    var text = $("draft").value.trim();
    $("send-edit").disabled = !text || text === original.trim();
  }
  $("draft").addEventListener("input", updateEditButton);

  var SENDER_LABEL = { customer: "Customer", ai: "AI", agent: "Agent", system: "System" };

  // "Sources: a, b" into node; a source with a web page (http(s) only, never a script
  // address) links to it, so the agent can check the page the answer came from.
  function sourceList(node, citations, label) {
    node.appendChild(document.createTextNode("Sources: "));
    citations.forEach(function (c, i) {
      if (i) node.appendChild(document.createTextNode(", "));
      node.appendChild(
        /^https?:\/\//i.test(c.url || "")
          ? el("a", { href: c.url, target: "_blank", rel: "noopener noreferrer", text: label(c) })
          : document.createTextNode(label(c))
      );
    });
    return node;
  }

  function renderTranscript(messages) {
    var list = $("transcript");
    var atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    list.textContent = "";
    messages.forEach(function (m) {
      var label = m.sender === "agent" && m.agent ? m.agent : SENDER_LABEL[m.sender] || m.sender;
      var cites = (m.citations || []).length
        ? sourceList(el("div", { className: "cites" }), m.citations, function (c) { return c.source_id; })
        : null;
      list.appendChild(
        el("li", { className: "line " + m.sender, "data-message-id": m.id }, [
          el("div", { className: "meta" }, [
            el("strong", { text: label }),
            m.created_at ? el("time", { datetime: m.created_at, text: " " + clock(m.created_at) }) : null,
          ]),
          el("div", { className: "text", text: m.text }),
          m.after_review ? el("div", { className: "owed", text: "Sent during the review: answered after it" }) : null,
          cites,
        ])
      );
    });
    if (atBottom) list.scrollTop = list.scrollHeight;
  }

  function renderHandoff(h) {
    $("handoff-reason").textContent = h
      ? "Reason: " + reasonText(h.reason) + (h.ticket_number ? " · ticket #" + h.ticket_number : "")
      : "No hand-off in this conversation.";
    $("handoff-summary").textContent = (h && h.summary) || "";
    var steps = (h && h.suggested_next_steps) || [];
    $("next-steps").textContent = "";
    steps.forEach(function (s) {
      $("next-steps").appendChild(el("li", { text: s }));
    });
    $("next-steps-box").hidden = steps.length === 0;
    var snippets = (h && h.kb_snippets) || [];
    $("snippets").textContent = "";
    snippets.forEach(function (s) {
      $("snippets").appendChild(
        el("li", {}, [
          el("details", {}, [
            el("summary", {}, [s.title + " ", el("span", { className: "muted", text: "(" + s.source_id + ")" })]),
            el("p", { text: s.text }),
          ]),
        ])
      );
    });
    $("snippets-box").hidden = snippets.length === 0;
  }

  // ------------------------------------------------------------------ actions
  function interruptId() {
    var p = pendingOf(state.detail);
    return p && p.interrupt_id ? p.interrupt_id : undefined;
  }

  // The server names the agent by the key (shown to the customer, the owner a take-over
  // records); the body never names anyone.
  async function act(button, path, body, after) {
    var id = state.selected;
    button.disabled = true;
    showConvAlert("");
    try {
      var payload = body || {};
      await api("POST", "/v1/agent/conversations/" + id + "/" + path, payload);
      if (after) after();
      refreshQueue();
      refreshList();
      reloadDetail();
    } catch (err) {
      actionFailed(err);
    } finally {
      button.disabled = false;
      if (state.detail && id === state.selected) renderDetail();
    }
  }

  $("takeover").addEventListener("click", function () {
    act($("takeover"), "takeover");
  });
  $("release").addEventListener("click", function () {
    act($("release"), "release");
  });
  $("close").addEventListener("click", function () {
    act($("close"), "close");
  });
  $("approve").addEventListener("click", function () {
    act($("approve"), "approve", { interrupt_id: interruptId() });
  });
  $("send-edit").addEventListener("click", function () {
    act($("send-edit"), "edit", { text: $("draft").value.trim(), interrupt_id: interruptId() });
  });
  $("reject-form").addEventListener("submit", function (e) {
    e.preventDefault();
    var reason = $("reject-reason").value.trim();
    if (!reason) {
      showConvAlert("Say why the draft is rejected: the AI uses it to redraft.");
      $("reject-reason").focus();
      return;
    }
    act(e.submitter || $("reject-form").querySelector("button"), "reject", {
      reason: reason,
      then: $("reject-then").value,
      interrupt_id: interruptId(),
    });
  });
  $("reply-form").addEventListener("submit", function (e) {
    e.preventDefault();
    var text = $("reply").value.trim();
    if (!text) return;
    act($("reply-form").querySelector("button"), "reply", { text: text, interrupt_id: interruptId() }, function () {
      $("reply").value = "";
    });
  });
  $("reply").addEventListener("keydown", function (e) {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      $("reply-form").requestSubmit();
    }
  });

  // ------------------------------------------------------------------ start
  // A stored key is asked again who it acts as (its name may have changed); without one, the
  // session cookie (if any) is tried: a reload keeps the agent signed in.
  if (/^#reset=pr_/.test(location.hash)) showReset();
  else if (!state.key && !readStore(SESSION_STORE)) showSignin("");
  else
    loadMe().then(
      function () {
        showDesk();
      },
      function (err) {
        if (!(err instanceof ApiError && err.status === 401)) showSignin(err.message);
      }
    );
})();
