/*!
 * deskgraph chat widget. Embed with one tag:
 *
 *   <script src="https://SUPPORT-HOST/widget.js" data-key="wk_..." async></script>
 *
 * Optional attributes: data-title (panel title), data-greeting (first line shown),
 * data-open="true" (open at load), data-api (API origin; defaults to the script's origin).
 * The page may call window.DeskgraphWidget.open() / .close() from its own "Chat with us" button.
 *
 * Behaviour (docs/http-api.md is the contract):
 * - No request is made until the customer sends a first message; then a conversation is created
 *   with the widget key and its id + customer token are kept in localStorage, so a reload or
 *   another page of the site resumes the same conversation (transcript fetched, then live).
 * - A turn is POSTed with Accept: text/event-stream and an Idempotency-Key, and its SSE frames
 *   are parsed from the response stream: tokens render as they arrive, sources under the answer.
 * - Everything after the turn (agent replies, status changes) comes from the resumable
 *   subscription GET /v1/conversations/{id}/events, read with fetch so the token travels in a
 *   header, not in a URL. After a drop it reconnects with backoff and Last-Event-ID; messages
 *   are de-duplicated by event id and message id, so a reply made during the drop shows once.
 * - Styles live in a shadow root: the host page's CSS cannot break the widget, nor the reverse.
 * Plain ES2020, no dependencies, no build step.
 */
(function () {
  "use strict";

  if (window.DeskgraphWidget) return; // embedded twice: the first one wins

  var script =
    document.currentScript || document.querySelector('script[src*="widget.js"][data-key]');
  if (!script) return;
  var KEY = script.getAttribute("data-key") || "";
  if (!/^wk_[A-Za-z0-9_-]+$/.test(KEY)) {
    console.error("deskgraph widget: data-key must be a widget key (wk_...), got", KEY);
    return;
  }
  var API = (script.getAttribute("data-api") || new URL(script.src, location.href).origin).replace(
    /\/+$/,
    ""
  );
  var TITLE = script.getAttribute("data-title") || "Support";
  var GREETING =
    script.getAttribute("data-greeting") ||
    "Hi! Ask me anything about our services. You can ask for a person at any time.";
  var OPEN_AT_LOAD = script.getAttribute("data-open") === "true";

  var CITATION = /\[([a-z0-9][a-z0-9._-]*)\]/gi;
  var RECONNECT_MAX_MS = 8000;
  // The server pings every 15 s; a silent stream for longer than this is a dead connection
  // (a sleeping laptop, a proxy that dropped it) even if the socket never reported it.
  var SILENCE_MS = 45000;
  var TOKEN_MARGIN_MS = 60000;

  // ---------------------------------------------------------------- styles
  var CSS = [
    ":host { all: initial; }",
    "* { box-sizing: border-box; }",
    ".root { font: 15px/1.45 system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; color: #1c2430; }",
    ".launcher { position: fixed; right: 20px; bottom: 20px; z-index: 2147483000; width: 56px; height: 56px;",
    "  border-radius: 50%; border: 0; background: #0b6e99; color: #fff; cursor: pointer;",
    "  box-shadow: 0 4px 14px rgba(0,0,0,.25); display: grid; place-items: center; }",
    ".launcher:hover { background: #095a7d; }",
    ".launcher svg { width: 28px; height: 28px; fill: currentColor; }",
    ".badge { position: absolute; top: -2px; right: -2px; min-width: 20px; height: 20px; border-radius: 10px;",
    "  background: #c62828; color: #fff; font-size: 12px; line-height: 20px; padding: 0 6px; }",
    ".panel { position: fixed; right: 20px; bottom: 88px; z-index: 2147483000; width: 370px; max-width: calc(100vw - 24px);",
    "  height: 560px; max-height: calc(100vh - 110px); background: #fff; border-radius: 12px;",
    "  box-shadow: 0 10px 40px rgba(0,0,0,.25); display: flex; flex-direction: column; overflow: hidden; }",
    ".panel[hidden] { display: none; }",
    "header { background: #0b6e99; color: #fff; padding: 10px 12px 10px 16px; display: flex; align-items: center; gap: 8px; }",
    "header h2 { font-size: 16px; margin: 0; flex: 1; }",
    ".conn { font-size: 12px; opacity: .9; margin: 0; }",
    ".close { background: transparent; border: 0; color: #fff; font-size: 22px; line-height: 1; cursor: pointer; padding: 4px 8px; border-radius: 6px; }",
    ".banner { background: #fff4d6; border-bottom: 1px solid #e7cf85; padding: 8px 14px; font-size: 13px; margin: 0; }",
    ".banner[hidden] { display: none; }",
    ".banner button { margin-left: 6px; }",
    ".log { list-style: none; margin: 0; padding: 12px; overflow-y: auto; flex: 1; display: flex; flex-direction: column; gap: 10px; }",
    ".msg { max-width: 88%; }",
    ".msg .who { font-size: 11px; color: #5b6773; margin-bottom: 2px; }",
    ".msg .text { padding: 8px 11px; border-radius: 12px; white-space: pre-wrap; word-wrap: break-word; background: #eef2f5; }",
    ".msg.customer { align-self: flex-end; }",
    ".msg.customer .text { background: #0b6e99; color: #fff; }",
    ".msg.agent .text { background: #e3f4e8; }",
    ".msg.system { align-self: center; text-align: center; max-width: 95%; }",
    ".msg.system .text { background: transparent; color: #5b6773; font-size: 13px; font-style: italic; padding: 2px 6px; }",
    ".msg .note { font-size: 11px; color: #5b6773; margin-top: 2px; text-align: right; }",
    ".msg .quote { font-size: 12px; color: #5b6773; border-left: 3px solid #c3ccd3; padding: 1px 0 1px 7px; margin: 0 0 3px; }",
    ".msg.failed .note { color: #b3261e; }",
    ".ref { font-size: 11px; color: #0b6e99; }",
    ".sources { font-size: 12px; color: #3c4852; margin: 4px 0 0 4px; }",
    ".sources ol { margin: 2px 0 0; padding-left: 18px; }",
    ".sources .sid { color: #6b7782; }",
    ".sources a { color: #0b6e99; }",
    ".rate { display: flex; gap: 4px; margin: 4px 0 0 4px; align-items: center; font-size: 12px; color: #5b6773; }",
    ".rate button { border: 1px solid #cfd8df; background: #fff; color: #3c4852; border-radius: 6px; cursor: pointer; padding: 2px 7px; line-height: 0; }",
    ".rate button.down svg { transform: rotate(180deg); }",
    ".rate button[aria-pressed='true'] { background: #dcefe3; border-color: #5d9c72; }",
    ".typing .text::after { content: '\\2026'; animation: blink 1s infinite; }",
    "@keyframes blink { 50% { opacity: .3; } }",
    ".alert { margin: 0; padding: 8px 14px; background: #fdecea; color: #8a1c14; font-size: 13px; }",
    ".alert[hidden] { display: none; }",
    "form { display: flex; gap: 8px; padding: 10px; border-top: 1px solid #e3e8ec; }",
    "textarea { flex: 1; resize: none; font: inherit; padding: 8px 10px; border: 1px solid #c3ccd3; border-radius: 8px; min-height: 40px; max-height: 120px; }",
    "button.send { background: #0b6e99; color: #fff; border: 0; border-radius: 8px; padding: 0 14px; font: inherit; cursor: pointer; }",
    "button.send:disabled { opacity: .6; cursor: default; }",
    "button.link { background: none; border: 0; color: inherit; text-decoration: underline; cursor: pointer; font: inherit; padding: 0; }",
    ":focus-visible { outline: 3px solid #f5a524; outline-offset: 2px; }",
    ".contact-card { align-self: stretch; max-width: 100%; }",
    ".contact-card form { display: grid; gap: 6px; padding: 10px 12px; border: 1px solid #c3ccd3; border-radius: 10px; background: #f7fafc; }",
    ".contact-card p { margin: 0; font-size: 13px; }",
    ".contact-card label { font-size: 12px; color: #3c4852; }",
    ".contact-card input { font: inherit; padding: 6px 9px; border: 1px solid #c3ccd3; border-radius: 8px; }",
    ".csat-scores { display: flex; gap: 6px; }",
    ".csat-score { font: inherit; min-width: 32px; padding: 4px 0; border: 1px solid #c3ccd3; border-radius: 8px; background: #fff; cursor: pointer; }",
    ".csat-score[aria-pressed='true'] { background: #1f6feb; color: #fff; border-color: #1f6feb; }",
    ".csat-card textarea { font: inherit; padding: 6px 9px; border: 1px solid #c3ccd3; border-radius: 8px; resize: vertical; }",
    ".contact-card button.send { padding: 7px 14px; justify-self: end; }",
    ".contact-card .contact-error { color: #b3261e; }",
    ".contact-card .contact-error[hidden] { display: none; }",
    ".contact-card .text { background: #e3f4e8; }",
    ".sr-only { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }",
    "@media (prefers-reduced-motion: reduce) { .typing .text::after { animation: none; } }",
  ].join("\n");

  // ---------------------------------------------------------------- storage
  // localStorage can throw (privacy modes, sandboxed frames): fall back to memory, so the chat
  // still works on this page and is only not resumable after a reload.
  var storeKey = "deskgraph:" + KEY;
  var memoryStore = null;
  function loadSession() {
    try {
      var raw = localStorage.getItem(storeKey);
      return raw ? JSON.parse(raw) : null;
    } catch (e) {
      return memoryStore;
    }
  }
  function saveSession(value) {
    memoryStore = value;
    try {
      if (value) localStorage.setItem(storeKey, JSON.stringify(value));
      else localStorage.removeItem(storeKey);
    } catch (e) {
      /* memory only; see loadSession */
    }
  }

  // ---------------------------------------------------------------- SSE parsing
  // An incremental parser of text/event-stream (WHATWG "server-sent events" field rules).
  // The console has the same few lines: the widget must stay a single file.
  function SSEParser(onEvent) {
    this.buffer = "";
    this.data = [];
    this.event = "";
    this.id = null;
    this.onEvent = onEvent;
  }
  SSEParser.prototype.feed = function (chunk) {
    this.buffer += chunk;
    var re = /\r\n|\r|\n/g;
    var start = 0;
    var match;
    while ((match = re.exec(this.buffer))) {
      // A lone \r at the very end may be the first half of \r\n: wait for the next chunk.
      if (match[0] === "\r" && match.index === this.buffer.length - 1) break;
      this.line(this.buffer.slice(start, match.index));
      start = re.lastIndex;
    }
    this.buffer = this.buffer.slice(start);
  };
  SSEParser.prototype.line = function (line) {
    if (line === "") {
      if (this.data.length) {
        this.onEvent({ event: this.event || "message", data: this.data.join("\n"), id: this.id });
      }
      this.data = [];
      this.event = "";
      this.id = null;
      return;
    }
    if (line.charAt(0) === ":") return; // comment / keep-alive ping
    var colon = line.indexOf(":");
    var field = colon < 0 ? line : line.slice(0, colon);
    var value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "data") this.data.push(value);
    else if (field === "event") this.event = value;
    else if (field === "id" && value.indexOf("\0") < 0) this.id = value;
  };

  async function readEventStream(response, onEvent, onActivity) {
    var reader = response.body.getReader();
    var decoder = new TextDecoder();
    var parser = new SSEParser(onEvent);
    for (;;) {
      var step = await reader.read();
      if (step.done) break;
      if (onActivity) onActivity();
      parser.feed(decoder.decode(step.value, { stream: true }));
    }
    parser.feed(decoder.decode() + "\n\n");
  }

  // ---------------------------------------------------------------- HTTP
  function ApiError(status, code, message) {
    this.status = status;
    this.code = code;
    this.message = message;
  }

  async function apiError(response) {
    var body = null;
    try {
      body = await response.json();
    } catch (e) {
      /* not JSON: a proxy's error page */
    }
    return new ApiError(
      response.status,
      (body && body.code) || "http_" + response.status,
      (body && body.message) || response.statusText || "request failed"
    );
  }

  function authHeaders(extra) {
    var headers = { Authorization: "Bearer " + session.token };
    for (var name in extra || {}) headers[name] = extra[name];
    return headers;
  }

  async function api(method, path, body, headers) {
    var init = { method: method, headers: headers || {}, cache: "no-store" };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    var response = await fetch(API + path, init);
    if (!response.ok) throw await apiError(response);
    return response.status === 204 ? null : response.json();
  }

  function politeError(err) {
    if (!(err instanceof ApiError)) {
      return "We couldn't reach our support service. Check your connection and try again.";
    }
    if (err.status === 429) return "You're sending messages quickly. Please wait a moment and try again.";
    if (err.status === 422) return "That message couldn't be sent: " + err.message;
    if (err.status >= 500) return "Something went wrong on our side. Please try again in a moment.";
    return err.message;
  }

  // ---------------------------------------------------------------- DOM
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    for (var name in attrs || {}) {
      if (name === "text") node.textContent = attrs[name];
      else if (name === "className") node.className = attrs[name];
      else if (attrs[name] !== null && attrs[name] !== undefined) node.setAttribute(name, attrs[name]);
    }
    (children || []).forEach(function (c) {
      if (c) node.appendChild(c);
    });
    return node;
  }

  var ICON =
    '<svg viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path d="M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2z"/></svg>';

  var host = el("div", { "data-deskgraph-widget": "" });
  var shadow = host.attachShadow({ mode: "open" });
  try {
    // A constructed stylesheet is not "inline style" to a host page's CSP.
    var sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
    shadow.adoptedStyleSheets = [sheet];
  } catch (e) {
    shadow.appendChild(el("style", { text: CSS }));
  }

  var launcher = el("button", {
    type: "button",
    className: "launcher",
    "aria-expanded": "false",
    "aria-controls": "dg-panel",
    "aria-label": "Open chat with " + TITLE,
  });
  launcher.innerHTML = ICON;
  var badge = el("span", { className: "badge", hidden: "", "aria-hidden": "true" });
  launcher.appendChild(badge);

  var titleEl = el("h2", { id: "dg-title", text: TITLE });
  var connEl = el("p", { className: "conn", role: "status" });
  var closeBtn = el("button", { type: "button", className: "close", "aria-label": "Close chat", text: "\u00d7" });
  var bannerText = el("span");
  var bannerAction = el("button", { type: "button", className: "link", hidden: "" });
  var banner = el("p", { className: "banner", role: "status", hidden: "" }, [bannerText, bannerAction]);
  // role=log is a polite live region: completed messages are announced; a message that is
  // still streaming is aria-busy, so screen readers read it once, whole, not token by token.
  var log = el("ol", { className: "log", role: "log", "aria-live": "polite", "aria-label": "Conversation" });
  var alertText = el("span");
  var alertEl = el("p", { className: "alert", role: "alert", hidden: "" }, [alertText]);
  var input = el("textarea", {
    id: "dg-input",
    rows: "1",
    maxlength: "4000",
    placeholder: "Type your message…",
    autocomplete: "off",
  });
  var sendBtn = el("button", { type: "submit", className: "send", text: "Send" });
  var form = el("form", { "aria-label": "Send a message" }, [
    el("label", { for: "dg-input", className: "sr-only", text: "Your message" }),
    input,
    sendBtn,
  ]);
  var panel = el(
    "section",
    { id: "dg-panel", className: "panel", role: "dialog", "aria-labelledby": "dg-title", hidden: "" },
    [el("header", {}, [titleEl, connEl, closeBtn]), banner, log, alertEl, form]
  );
  var root = el("div", { className: "root" }, [panel, launcher]);
  shadow.appendChild(root);

  // ---------------------------------------------------------------- state
  var session = loadSession(); // {id, token, expiresAt, lastEventId} or null
  var messages = new Map(); // message id -> {node, sender, completed, textNode, text}
  var systemKeys = new Set();
  var unread = 0;
  var mode = "ai"; // ai | waiting | reviewing | agent | closed
  var afterReview = 0; // customer messages waiting for the answer under review
  var agentName = null;
  var typingNode = null;
  var outbox = []; // messages not yet accepted by the server, sent one at a time
  var sending = false;
  var creating = null;

  function isOpen() {
    return !panel.hidden;
  }

  function openPanel() {
    panel.hidden = false;
    launcher.setAttribute("aria-expanded", "true");
    launcher.setAttribute("aria-label", "Close chat with " + TITLE);
    unread = 0;
    renderBadge();
    scrollDown();
    input.focus();
    loadBusiness();
  }

  function closePanel() {
    panel.hidden = true;
    launcher.setAttribute("aria-expanded", "false");
    renderBadge();
    launcher.focus();
  }

  function renderBadge() {
    badge.hidden = unread === 0;
    badge.textContent = String(unread);
    if (!isOpen()) {
      launcher.setAttribute(
        "aria-label",
        "Open chat with " + TITLE + (unread ? " (" + unread + " new)" : "")
      );
    }
  }

  function scrollDown() {
    log.scrollTop = log.scrollHeight;
  }

  function showAlert(text) {
    alertText.textContent = text;
    alertEl.hidden = !text;
  }

  function setConnection(text) {
    connEl.textContent = text;
  }

  function setMode(next, detail) {
    if (mode === "closed" && next !== "ai") return;
    // The banner takes its height from the log: keep the last message in view when it shows.
    var atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    if (next !== "reviewing") afterReview = 0;
    mode = next;
    if (detail) agentName = detail;
    var text = "";
    var action = null;
    if (mode === "waiting") {
      text = "Connecting you to a person… You can keep writing: they'll see your messages.";
    } else if (mode === "reviewing") {
      // What is true: a person checks a drafted answer; nobody is being connected.
      text = afterReview
        ? "A team member is checking an answer; your new message will be answered after it."
        : "A team member is checking this answer before it's sent.";
    } else if (mode === "agent") {
      text = "You're chatting with " + (agentName || "a person from our team") + ".";
    } else if (mode === "closed") {
      text = "This conversation is closed.";
      action = "Start a new conversation";
    }
    bannerText.textContent = text;
    banner.hidden = !text;
    bannerAction.hidden = !action;
    bannerAction.textContent = action || "";
    input.disabled = mode === "closed";
    sendBtn.disabled = mode === "closed";
    if (atBottom) scrollDown();
  }

  // ---------------------------------------------------------------- rendering
  // Inline [source-id] markers become numbered references to the sources listed under the
  // answer; numbering follows the citations list, or first appearance while still streaming.
  function renderText(node, text, citations) {
    node.textContent = "";
    var order = [];
    var last = 0;
    var match;
    CITATION.lastIndex = 0;
    while ((match = CITATION.exec(text))) {
      var id = match[1];
      var index = citations ? citations.findIndex(function (c) { return c.source_id === id; }) : -1;
      if (citations && index < 0) continue; // brackets that are not a citation stay as text
      if (index < 0) {
        index = order.indexOf(id);
        if (index < 0) index = order.push(id) - 1;
      }
      node.appendChild(document.createTextNode(text.slice(last, match.index).replace(/\s+$/, " ")));
      var title = citations ? citations[index].title : id;
      node.appendChild(el("sup", { className: "ref", title: title, text: "[" + (index + 1) + "]" }));
      last = CITATION.lastIndex;
    }
    node.appendChild(document.createTextNode(text.slice(last)));
  }

  function whoLabel(sender, name) {
    if (sender === "ai") return "Assistant";
    if (sender === "agent") return name || agentName || "Support team";
    if (sender === "customer") return "You";
    return null;
  }

  function addBubble(sender, opts) {
    opts = opts || {};
    var textNode = el("div", { className: "text" });
    var label = whoLabel(sender, opts.agentName);
    var node = el("li", { className: "msg " + sender }, [
      label ? el("div", { className: "who", text: label }) : null,
      textNode,
    ]);
    if (typingNode && typingNode.parentNode && sender !== "customer") {
      log.insertBefore(node, typingNode);
    } else {
      log.appendChild(node);
    }
    scrollDown();
    return { node: node, textNode: textNode, sender: sender, completed: false, text: "" };
  }

  function noteOn(entry, text) {
    var note = entry.node.querySelector(".note");
    if (!note) {
      note = el("div", { className: "note" });
      entry.node.appendChild(note);
    }
    note.textContent = text;
    scrollDown();
    return note;
  }

  function showTyping(show) {
    if (show && !typingNode) {
      typingNode = el("li", { className: "msg ai typing", "aria-label": "The assistant is typing" }, [
        el("div", { className: "text" }),
      ]);
      log.appendChild(typingNode);
      scrollDown();
    } else if (!show && typingNode) {
      typingNode.remove();
      typingNode = null;
    }
  }

  function addSystem(key, text) {
    if (!text || (key && systemKeys.has(key))) return;
    if (key) systemKeys.add(key);
    var entry = addBubble("system");
    entry.textNode.textContent = text;
    return entry;
  }

  function countUnread() {
    if (!isOpen()) {
      unread += 1;
      renderBadge();
    }
  }

  function onToken(data) {
    if (!data.message_id) return;
    var entry = messages.get(data.message_id);
    if (entry && entry.completed) return; // the completed text already arrived (subscription)
    if (!entry) {
      showTyping(false);
      entry = addBubble("ai");
      entry.node.setAttribute("aria-busy", "true");
      entry.node.setAttribute("data-message-id", data.message_id);
      messages.set(data.message_id, entry);
    }
    entry.text += data.text;
    renderText(entry.textNode, entry.text, null);
    scrollDown();
  }

  // A finished message from any source: the turn's stream, the subscription or the transcript.
  function onMessage(data, sender) {
    var id = data.message_id || data.id;
    if (!id) return;
    if (sender === "customer") return onCustomerMessage(data, id);
    var entry = messages.get(id);
    if (entry && entry.completed) return;
    if (entry && entry.sender !== sender) {
      // Streamed before its sender was known (tokens do not say): label it now.
      entry.node.className = "msg " + sender;
      var who = entry.node.querySelector(".who");
      if (who) who.textContent = whoLabel(sender, data.agent || data.agent_name) || "";
      entry.sender = sender;
    }
    if (!entry) {
      showTyping(false);
      entry = addBubble(sender, { agentName: data.agent || data.agent_name });
      entry.node.setAttribute("data-message-id", id);
      messages.set(id, entry);
    }
    entry.completed = true;
    entry.text = data.text || "";
    entry.node.removeAttribute("aria-busy");
    quoteQuestion(entry, data.in_reply_to);
    var citations = sender === "ai" ? data.citations || [] : [];
    renderText(entry.textNode, entry.text, sender === "ai" ? citations : []);
    if (citations.length) {
      var list = el("ol");
      citations.forEach(function (c) {
        // A source with a web address (an FAQ page) links to it; only http(s), never script.
        var title = /^https?:\/\//i.test(c.url || "")
          ? el("a", { href: c.url, target: "_blank", rel: "noopener noreferrer", text: c.title })
          : document.createTextNode(c.title);
        list.appendChild(
          el("li", {}, [title, document.createTextNode(" "), el("span", { className: "sid", text: "(" + c.source_id + ")" })])
        );
      });
      entry.node.appendChild(el("div", { className: "sources" }, [el("span", { text: "Sources" }), list]));
    }
    if (sender === "ai") entry.node.appendChild(ratingFor(id));
    scrollDown();
    if (!data.replayed) countUnread();
  }

  // An answer that arrives after later customer messages (a checked answer sent once the
  // customer had written again) quotes the question it answers, so it never reads as the
  // answer to the message just above it.
  function quoteQuestion(entry, questionId) {
    var question = questionId ? messages.get(questionId) : null;
    if (!question || entry.node.querySelector(".quote")) return;
    var later = false;
    for (var n = question.node.nextSibling; n && n !== entry.node; n = n.nextSibling) {
      if (n.classList && n.classList.contains("customer")) later = true;
    }
    if (!later) return;
    var quote = el("blockquote", { className: "quote", text: "\u21aa " + (question.textNode.textContent || "") });
    quote.setAttribute("data-in-reply-to", questionId);
    entry.node.insertBefore(quote, entry.textNode);
  }

  function onCustomerMessage(data, id) {
    if (messages.has(id)) return;
    // Our own optimistic bubble: the first one still waiting for its server id, same text.
    var text = (data.text || "").trim();
    var pending = outbox.find(function (item) {
      return !item.serverId && item.text === text;
    });
    var entry;
    if (pending) {
      pending.serverId = id;
      entry = pending.entry;
    } else {
      entry = addBubble("customer");
      entry.textNode.textContent = data.text;
    }
    entry.completed = true;
    entry.node.setAttribute("data-message-id", id);
    messages.set(id, entry);
    if (data.after_review) {
      noteOn(entry, "Will be answered after the answer being checked");
      afterReview += 1;
      setMode("reviewing");
    } else if (data.queued_for_agent) noteOn(entry, "Passed to our team");
  }

  // Icons, not emoji: not every system has an emoji font (headless Linux shows boxes).
  var THUMB =
    '<svg viewBox="0 0 24 24" width="14" height="14" aria-hidden="true" focusable="false">' +
    '<path fill="currentColor" d="M2 21h4V9H2v12zm20-11a2 2 0 0 0-2-2h-6.3l1-4.6v-.3c0-.4-.2' +
    '-.8-.4-1.1L13.2 1 6.6 7.6C6.2 8 6 8.5 6 9v10a2 2 0 0 0 2 2h9c.8 0 1.5-.5 1.8-1.2l3-7.1c.1' +
    '-.2.2-.5.2-.7v-2z"/></svg>';

  function ratingFor(messageId) {
    var up = el("button", { type: "button", "aria-label": "Helpful", "aria-pressed": "false" });
    var down = el("button", { type: "button", "aria-label": "Not helpful", "aria-pressed": "false", className: "down" });
    up.innerHTML = down.innerHTML = THUMB;
    var status = el("span", { role: "status" });
    var box = el("div", { className: "rate" }, [el("span", { text: "Was this helpful?" }), up, down, status]);
    function rate(rating, button) {
      up.disabled = down.disabled = true;
      api("POST", "/v1/conversations/" + session.id + "/feedback", { message_id: messageId, rating: rating }, authHeaders())
        .then(function () {
          button.setAttribute("aria-pressed", "true");
          status.textContent = "Thanks for the feedback!";
        })
        .catch(function (err) {
          up.disabled = down.disabled = false;
          status.textContent = "";
          showAlert("Your rating wasn't saved. " + politeError(err));
        });
    }
    up.addEventListener("click", function () { rate("up", up); });
    down.addEventListener("click", function () { rate("down", down); });
    return box;
  }

  // ---------------------------------------------------------------- events
  function handleEvent(name, data) {
    switch (name) {
      case "message.created":
        if (data.sender === "customer") onMessage(data, "customer");
        break;
      case "token":
        onToken(data);
        break;
      case "message.completed":
        onMessage(data, data.sender || "ai");
        if (data.sender === "ai" && (mode === "reviewing" || mode === "waiting")) setMode("ai");
        break;
      case "agent.message":
        onMessage(data, "agent");
        setMode("agent", data.agent || data.agent_name || null);
        break;
      case "handoff":
        showTyping(false);
        addSystem(data.ticket_id ? "handoff:" + data.ticket_id : null, data.message);
        if (mode !== "agent") setMode("waiting");
        break;
      case "approval.pending":
        showTyping(false);
        if (mode !== "agent") setMode("reviewing");
        break;
      case "status":
        onStatus(data);
        break;
      case "error":
        showTyping(false);
        showAlert(data.message || "Something went wrong. Please try again.");
        break;
      case "done":
        showTyping(false);
        break;
      case "contact.request":
        showTyping(false);
        showContactForm(data.message, data.reason);
        break;
      case "csat.request":
        showCsat(data);
        break;
      default:
        break; // event names added later are ignored, not errors
    }
  }

  // Node progress ({"node"}) is ignored; conversation status changes ({"status",
  // "owner_agent"?}) drive the banner. Only an explicit owner_agent: null means "back to the AI":
  // a bare "active" also follows an agent's reply.
  function onStatus(data) {
    if (!data.status) return;
    if (data.status === "closed") {
      setMode("closed");
      stopEvents();
      return;
    }
    var ownerKey = "owner_agent" in data ? "owner_agent" : "owner" in data ? "owner" : null;
    var owner = ownerKey ? data[ownerKey] : undefined;
    if (owner) {
      setMode("agent", owner); // taken over: a person answers from now on
    } else if (data.status === "waiting_human" && data.waiting_on === "approval") {
      showTyping(false);
      if (mode !== "agent") setMode("reviewing");
    } else if (data.status === "waiting_human") {
      showTyping(false);
      if (mode === "ai") setMode("waiting");
    } else if (data.status === "active" && ownerKey) {
      setMode("ai"); // released: owner explicitly cleared
    }
  }

  // ---------------------------------------------------------------- the subscription
  var sub = { stopped: true, controller: null, timer: null, silence: null, attempt: 0, dropped: false };

  function startEvents() {
    if (!session) return;
    sub.stopped = false;
    connectEvents();
  }

  function stopEvents() {
    sub.stopped = true;
    clearTimeout(sub.timer);
    clearTimeout(sub.silence);
    if (sub.controller) sub.controller.abort();
    sub.controller = null;
    setConnection("");
  }

  function armSilence(controller) {
    clearTimeout(sub.silence);
    sub.silence = setTimeout(function () {
      controller.abort();
    }, SILENCE_MS);
  }

  async function connectEvents() {
    if (sub.stopped || sub.controller || !session) return;
    clearTimeout(sub.timer);
    var controller = new AbortController();
    sub.controller = controller;
    var current = session;
    var headers = authHeaders({ Accept: "text/event-stream" });
    if (current.lastEventId) headers["Last-Event-ID"] = String(current.lastEventId);
    try {
      var response = await fetch(API + "/v1/conversations/" + current.id + "/events", {
        headers: headers,
        signal: controller.signal,
        cache: "no-store",
      });
      if (!response.ok) throw await apiError(response);
      sub.attempt = 0;
      if (sub.dropped) setConnection("");
      sub.dropped = false;
      armSilence(controller);
      await readEventStream(
        response,
        function (frame) {
          var seq = frame.id ? Number(frame.id) : NaN;
          if (!isNaN(seq)) {
            if (seq <= (current.lastEventId || 0)) return; // seen before the reconnect
            current.lastEventId = seq;
            if (current === session) saveSession(session);
          }
          var data;
          try {
            data = JSON.parse(frame.data);
          } catch (e) {
            console.warn("deskgraph widget: ignoring a malformed event", frame);
            return;
          }
          handleEvent(frame.event, data);
        },
        function () {
          armSilence(controller);
        }
      );
    } catch (err) {
      if (err instanceof ApiError && (err.status === 401 || err.status === 403 || err.status === 404)) {
        sub.controller = null;
        clearTimeout(sub.silence);
        return conversationLost();
      }
      if (sub.stopped) return;
      console.warn("deskgraph widget: live updates interrupted", err);
    } finally {
      if (sub.controller === controller) sub.controller = null;
      clearTimeout(sub.silence);
    }
    if (sub.stopped || current !== session) return;
    // The stream ended or failed: come back with Last-Event-ID, quickly at first.
    sub.dropped = true;
    setConnection(navigator.onLine === false ? "Offline – waiting for connection…" : "Reconnecting…");
    var delay = Math.min(RECONNECT_MAX_MS, 400 * Math.pow(2, sub.attempt));
    sub.attempt += 1;
    sub.timer = setTimeout(connectEvents, delay * (0.75 + Math.random() * 0.5));
  }

  function reconnectNow() {
    if (!sub.stopped && !sub.controller && session) {
      sub.attempt = 0;
      connectEvents();
    }
  }
  window.addEventListener("online", reconnectNow);
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") reconnectNow();
  });

  // ---------------------------------------------------------------- conversation lifecycle
  function conversationLost() {
    // The token expired or the conversation is gone: the next message starts a new one.
    stopEvents();
    saveSession(null);
    session = null;
    setMode("ai");
    addSystem(null, "Your previous conversation has ended; new messages start a new one.");
  }

  function sessionUsable(s) {
    if (!s || !s.id || !s.token) return false;
    if (!s.expiresAt) return true;
    return Date.parse(s.expiresAt) - TOKEN_MARGIN_MS > Date.now();
  }

  // A signed-in customer, vouched for by the business's server (docs/contacts.md): the page
  // calls DeskgraphWidget.identify({user, signature}) or passes a function that fetches a freshly
  // signed one (a signature is good for 10 minutes, and the first message may come later).
  var identity = null;

  function whoOf(id) {
    var user = id && typeof id === "object" && id.user;
    return user ? String(user.user_id || user.email || user.phone || "") : null;
  }

  async function signedIdentity() {
    if (typeof identity !== "function") return identity;
    try {
      return await identity();
    } catch (err) {
      console.warn("deskgraph widget: could not get the signed identity", err);
      return null;
    }
  }

  async function startConversation() {
    var who = await signedIdentity();
    var body = { channel: "web" };
    if (who) body.identity = who;
    try {
      var created = await api("POST", "/v1/conversations", body, { "X-Widget-Key": KEY });
      created.who = whoOf(who);
      return created;
    } catch (err) {
      // A refused identity (stale, or signed with an old secret) must not leave the customer
      // without help: they are served anonymously, and the site's developer is told.
      if (!who || !(err instanceof ApiError) || (err.code !== "invalid_identity" && err.code !== "identity_expired")) {
        throw err;
      }
      console.warn("deskgraph widget: identity refused (" + err.code + "): " + err.message);
      return api("POST", "/v1/conversations", { channel: "web" }, { "X-Widget-Key": KEY });
    }
  }

  function identify(next) {
    identity = next || null;
    var who = whoOf(identity);
    // Another signed-in customer on this browser: their conversation is not this one's. (An
    // anonymous conversation carries on when its customer signs in.)
    if (session && who !== null && session.who && session.who !== who) {
      if (mounted) newConversation();
      else {
        saveSession(null);
        session = null;
      }
    }
  }

  async function ensureConversation() {
    if (session) return session;
    if (!creating) {
      creating = startConversation()
        .then(function (body) {
          session = {
            id: body.id,
            token: body.customer_token,
            expiresAt: body.token_expires_at || null,
            lastEventId: 0,
            who: body.who || null,
          };
          saveSession(session);
          startEvents();
          return session;
        })
        .finally(function () {
          creating = null;
        });
    }
    return creating;
  }

  async function resume() {
    var current = session;
    try {
      var body = await api("GET", "/v1/conversations/" + current.id + "/messages", undefined, authHeaders());
      (body.messages || []).forEach(function (m) {
        var data = {
          message_id: m.id,
          text: m.text,
          citations: m.citations,
          agent: m.agent,
          in_reply_to: m.in_reply_to,
          after_review: m.after_review,
          replayed: true,
        };
        onMessage(data, m.sender);
      });
      var conv = body.conversation || {};
      if (conv.status === "closed") {
        setMode("closed");
        return;
      }
      var owner = conv.owner_agent || conv.owner || null;
      if (owner) setMode("agent", owner);
      else if (conv.waiting_on === "approval") setMode("reviewing");
      else if (conv.status === "waiting_human") setMode("waiting");
      startEvents();
    } catch (err) {
      if (err instanceof ApiError && (err.status === 401 || err.status === 403 || err.status === 404)) {
        saveSession(null);
        session = null;
        return;
      }
      // Transient: keep the session and let the subscription bring us up to date.
      console.warn("deskgraph widget: could not load the transcript", err);
      startEvents();
    }
  }

  // The business's own greeting (GET /v1/widget), unless the page set one: fetched when the
  // chat is first opened, so a page view costs the API nothing. A failure keeps the generic
  // line; the chat works without it. The title stays the page's (data-title) or "Support".
  var greetingLine = null;
  var businessLoaded = false;
  function loadBusiness() {
    if (businessLoaded || script.hasAttribute("data-greeting")) return;
    businessLoaded = true;
    api("GET", "/v1/widget", undefined, { "X-Widget-Key": KEY })
      .then(function (cfg) {
        if (!cfg.greeting) return;
        GREETING = cfg.greeting;
        if (greetingLine) greetingLine.textNode.textContent = GREETING;
      })
      .catch(function () {
        businessLoaded = false; // try again on the next open
      });
  }

  function newConversation() {
    stopEvents();
    saveSession(null);
    session = null;
    messages.clear();
    systemKeys.clear();
    log.textContent = "";
    agentName = null;
    mode = "ai";
    setMode("ai");
    greetingLine = addSystem(null, GREETING);
    input.focus();
  }

  // ---------------------------------------------------------------- sending
  function newKey() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return Date.now().toString(36) + Math.random().toString(36).slice(2);
  }

  function queueMessage(text) {
    var entry = addBubble("customer");
    entry.textNode.textContent = text;
    var item = { text: text, key: newKey(), entry: entry, serverId: null };
    outbox.push(item);
    pump();
  }

  // Messages go out one at a time, in order: a turn must finish before the next one starts
  // (the server allows one turn per conversation), and a failed message holds the ones
  // behind it until the customer retries it, so the agent never reads them out of order.
  async function pump() {
    if (sending) return;
    sending = true;
    try {
      while (outbox.length) {
        var item = outbox[0];
        if (item.failed) break; // waits for the customer's "Retry"
        var outcome = await sendTurn(item);
        if (outcome === "retry") break;
        if (outcome === "again") continue; // same message, new conversation
        outbox.shift(); // sent, or refused for good (shown as such)
      }
    } finally {
      sending = false;
    }
  }

  // "sent" | "refused" (will never go through) | "retry" (the customer may retry) |
  // "again" (the conversation was gone: send it in a fresh one).
  async function sendTurn(item) {
    var response;
    try {
      await ensureConversation();
      if (mode === "ai") showTyping(true);
      response = await fetch(API + "/v1/conversations/" + session.id + "/messages", {
        method: "POST",
        headers: authHeaders({
          "Content-Type": "application/json",
          Accept: "text/event-stream",
          "Idempotency-Key": item.key,
        }),
        body: JSON.stringify({ text: item.text }),
        cache: "no-store",
      });
      if (!response.ok) throw await apiError(response);
    } catch (err) {
      showTyping(false);
      return sendFailed(item, err);
    }
    showAlert("");
    clearNote(item.entry);
    try {
      var type = response.headers.get("content-type") || "";
      if (type.indexOf("text/event-stream") >= 0) {
        await readEventStream(response, function (frame) {
          handleEvent(frame.event, JSON.parse(frame.data));
        });
      } else {
        // A replayed idempotent request may come back as the JSON form of the same turn.
        var body = await response.json();
        (body.events || []).forEach(function (e) {
          handleEvent(e.event, e.data);
        });
      }
    } catch (err) {
      // The server has the message; the rest of the turn arrives through the subscription.
      console.warn("deskgraph widget: the answer stream was interrupted", err);
      reconnectNow();
    } finally {
      showTyping(false);
    }
    return "sent";
  }

  function sendFailed(item, err) {
    // With no session the failure was starting a conversation (a bad widget key, say).
    var gone = session && err instanceof ApiError && [401, 403, 404].indexOf(err.status) >= 0;
    if (gone && !item.renewed) {
      // The token expired or the conversation is gone: start a new one and send it there.
      item.renewed = true;
      item.key = newKey();
      conversationLost();
      return "again";
    }
    if (err instanceof ApiError && err.code === "conversation_closed") {
      setMode("closed");
      markFailed(item, "This conversation is closed. Start a new one to keep writing.", false);
      return "refused";
    }
    if (!session && err instanceof ApiError && (err.status === 401 || err.status === 403)) {
      // The site's widget key was refused (revoked, or not allowed on this origin): the
      // customer cannot fix that, the site owner can, so the details go to the console.
      console.error("deskgraph widget: the widget key was refused:", err.code, err.message);
      markFailed(item, "Sorry, chat isn't available on this page right now.", false);
      return "refused";
    }
    // A 4xx other than these will fail the same way again (too long, say): no retry button.
    var retryable = !(err instanceof ApiError) || err.status >= 500 || [408, 409, 429].indexOf(err.status) >= 0;
    markFailed(item, politeError(err), retryable);
    return retryable ? "retry" : "refused";
  }

  function clearNote(entry) {
    var note = entry.node.querySelector(".note");
    if (note) note.remove();
  }

  function markFailed(item, text, retryable) {
    item.failed = retryable;
    item.entry.node.classList.add("failed");
    var note = noteOn(item.entry, "Not sent. ");
    showAlert(text);
    if (!retryable) return;
    var retry = el("button", { type: "button", className: "link", text: "Retry" });
    retry.addEventListener("click", function () {
      item.failed = false;
      item.entry.node.classList.remove("failed");
      noteOn(item.entry, "Sending…");
      showAlert("");
      pump();
    });
    note.appendChild(retry);
  }

  // ---------------------------------------------------------------- contact details
  // The desk asks for the customer's name and email with a `contact.request` event
  // {reason, message} (before a quote, or when nobody is in to answer now; desk/contacts.py);
  // the page can offer the form too (DeskgraphWidget.offerContact()). The details go to
  // POST /v1/conversations/{id}/contact. Once given, the widget does not ask again in this
  // conversation: the business has them.
  var contactCard = null;

  function showContactForm(message, reason) {
    if (contactCard && contactCard.parentNode) return; // one open form at a time
    if (session && session.contactEmail) return;
    var nameInput = el("input", { id: "dg-contact-name", type: "text", autocomplete: "name", maxlength: "200" });
    var emailInput = el("input", {
      id: "dg-contact-email",
      type: "email",
      autocomplete: "email",
      maxlength: "254",
      required: "",
    });
    var error = el("p", { className: "contact-error", role: "alert", hidden: "" });
    var submit = el("button", { type: "submit", className: "send", text: "Send my details" });
    var contactForm = el("form", { "aria-label": "Your contact details", novalidate: "" }, [
      el("p", { text: message || "Leave your name and email, and we'll get back to you." }),
      el("label", { for: "dg-contact-name", text: "Your name" }),
      nameInput,
      el("label", { for: "dg-contact-email", text: "Your email" }),
      emailInput,
      error,
      submit,
    ]);
    contactCard = el("li", { className: "msg contact-card", "data-reason": reason || "asked" }, [contactForm]);
    if (typingNode && typingNode.parentNode) log.insertBefore(contactCard, typingNode);
    else log.appendChild(contactCard);
    countUnread();
    scrollDown();
    if (isOpen()) nameInput.focus();

    function fail(text, field) {
      error.textContent = text;
      error.hidden = false;
      submit.disabled = false;
      (field || emailInput).focus();
    }

    contactForm.addEventListener("submit", async function (e) {
      e.preventDefault();
      var email = emailInput.value.trim();
      var name = nameInput.value.trim();
      if (!email) return fail("Please enter your email so we can reach you.");
      error.hidden = true;
      submit.disabled = true;
      try {
        var current = await ensureConversation();
        var body = { email: email };
        if (name) body.name = name;
        var saved = await api("POST", "/v1/conversations/" + current.id + "/contact", body, authHeaders());
        current.contactEmail = saved.email || email;
        if (current === session) saveSession(session);
        var card = contactCard;
        contactCard = null; // answered: a later request is judged by contactEmail alone
        card.textContent = "";
        card.appendChild(el("div", { className: "text", text: "Thanks, we'll reach you at " + current.contactEmail + "." }));
        scrollDown();
      } catch (err) {
        if (err instanceof ApiError && err.status === 422) {
          var onName = /^body\.name/.test(err.message);
          return fail(
            onName ? "Please check your name." : "Please check your email address: it should look like name@example.com.",
            onName ? nameInput : emailInput
          );
        }
        fail(politeError(err));
      }
    });
  }

  // ---------------------------------------------------------------- satisfaction
  // A ticket of the conversation was resolved: the desk asks how it went with a `csat.request`
  // event {ticket_number, resolution_id, scale}. The customer picks 1-5 and may add a comment;
  // POST /v1/conversations/{id}/csat takes it once per resolution (helpdesk/tickets.py).
  var csatAsked = {};

  function showCsat(data) {
    var key = data.resolution_id || "";
    if (csatAsked[key]) return; // a replayed event asks once
    csatAsked[key] = true;
    var chosen = 0;
    var scores = el("div", { className: "csat-scores", role: "group", "aria-label": "Your rating, 1 to 5" });
    var comment = el("textarea", { id: "dg-csat-comment-" + key, maxlength: "2000", rows: "2" });
    var error = el("p", { className: "contact-error", role: "alert", hidden: "" });
    var submit = el("button", { type: "submit", className: "send", text: "Send", disabled: "" });
    [1, 2, 3, 4, 5].forEach(function (n) {
      var b = el("button", { type: "button", className: "csat-score", text: String(n), "aria-pressed": "false" });
      b.addEventListener("click", function () {
        chosen = n;
        Array.prototype.forEach.call(scores.children, function (c) {
          c.setAttribute("aria-pressed", c === b ? "true" : "false");
        });
        submit.disabled = false;
      });
      scores.appendChild(b);
    });
    var csatForm = el("form", { "aria-label": "How did we do?", novalidate: "" }, [
      el("p", { text: "How did we do" + (data.ticket_number ? " on " + data.ticket_number : "") + "? 1 is bad, 5 is great." }),
      scores,
      el("label", { for: "dg-csat-comment-" + key, text: "Anything to add? (optional)" }),
      comment,
      error,
      submit,
    ]);
    var card = el("li", { className: "msg contact-card csat-card" }, [csatForm]);
    if (typingNode && typingNode.parentNode) log.insertBefore(card, typingNode);
    else log.appendChild(card);
    countUnread();
    scrollDown();

    csatForm.addEventListener("submit", async function (e) {
      e.preventDefault();
      if (!chosen) return;
      error.hidden = true;
      submit.disabled = true;
      try {
        var current = await ensureConversation();
        var body = { score: chosen };
        if (comment.value.trim()) body.comment = comment.value.trim();
        await api("POST", "/v1/conversations/" + current.id + "/csat", body, authHeaders());
        card.textContent = "";
        card.appendChild(el("div", { className: "text", text: "Thanks for rating us " + chosen + " of 5." }));
        scrollDown();
      } catch (err) {
        error.textContent = politeError(err);
        error.hidden = false;
        submit.disabled = false;
      }
    });
  }

  // ---------------------------------------------------------------- wiring
  launcher.addEventListener("click", function () {
    if (isOpen()) closePanel();
    else openPanel();
  });
  closeBtn.addEventListener("click", closePanel);
  panel.addEventListener("keydown", function (e) {
    if (e.key === "Escape") closePanel();
  });
  bannerAction.addEventListener("click", newConversation);
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var text = input.value.trim();
    if (!text || mode === "closed") return;
    if (text.length > 4000) {
      showAlert("Messages can be at most 4000 characters.");
      return;
    }
    input.value = "";
    showAlert("");
    queueMessage(text);
  });
  input.addEventListener("keydown", function (e) {
    // Enter sends, Shift+Enter starts a new line (what chat users expect).
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      form.requestSubmit();
    }
  });

  var mounted = false;
  function mount() {
    mounted = true;
    document.body.appendChild(host);
    greetingLine = addSystem(null, GREETING);
    if (sessionUsable(session)) resume();
    else if (session) {
      saveSession(null);
      session = null;
    }
    if (OPEN_AT_LOAD) openPanel();
  }

  window.DeskgraphWidget = {
    open: openPanel,
    close: closePanel,
    offerContact: function (message) {
      openPanel();
      showContactForm(message, "offered");
    },
    identify: identify,
  };
  if (window.DeskgraphIdentity) identify(window.DeskgraphIdentity);
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);
})();
