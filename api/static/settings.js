/* Business settings in the agent console: the profile's everyday fields (name, time zone,
 * contact, opening hours, chat configuration), for admins only (the role table's
 * profile.edit; the server checks it again on every call).
 *
 * It talks to GET/PATCH /v1/admin/profile through the console's own request function
 * (window.deskgraphConsole.api, so the session cookie or key and the sign-out on 401 are
 * the console's), and sends only the fields that changed, naming the version it edited: a save
 * that lost a race is 409 version_conflict and says so; a bad value is 422 invalid_profile, whose
 * message names the field, shown as the server wrote it. Nothing here validates on its own: the
 * server is the one judge of a profile. Fields the form does not show (closures, service area,
 * replies) are kept as they are; `deskgraph tenant profile` and the API edit them.
 */
(function () {
  "use strict";

  var DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];
  var FIELDS = [
    ["display_name", "text"],
    ["short_name", "text"],
    ["timezone", "text"],
    ["contact.phone", "text"],
    ["contact.email", "text"],
    ["contact.address", "text"],
    ["chat.require_contact_before_quote", "bool"],
    ["chat.max_quote_without_handoff", "number"],
    ["chat.allowed_discount_percent", "number"],
    ["chat.estimate_disclaimer", "text"],
    ["chat.guardrail_profile", "text"],
  ];
  var current = { version: 0, profile: null };

  function $(id) {
    return document.getElementById(id);
  }

  function read(profile, path) {
    return path.split(".").reduce(function (node, part) {
      return node == null ? null : node[part];
    }, profile);
  }

  function inputId(path) {
    return "set-" + path.replace(/[._]/g, "-");
  }

  // "09:00-12:00, 13:00-17:00" <-> [{opens, closes}, ...]; empty means closed that day.
  function hoursText(periods) {
    return (periods || [])
      .map(function (p) {
        return p.opens + "-" + p.closes;
      })
      .join(", ");
  }

  function parseHours(text) {
    return text
      .split(",")
      .map(function (part) {
        return part.trim();
      })
      .filter(Boolean)
      .map(function (part) {
        var bits = part.split("-").map(function (b) {
          return b.trim();
        });
        // A malformed period goes to the server as written, which names the field in its answer.
        return { opens: bits[0] || part, closes: bits[1] || "" };
      });
  }

  function fill(out) {
    current = out;
    FIELDS.forEach(function (f) {
      var el = $(inputId(f[0]));
      var value = read(out.profile, f[0]);
      if (f[1] === "bool") el.checked = Boolean(value);
      else el.value = value == null ? "" : String(value);
    });
    DAYS.forEach(function (day) {
      $("set-hours-" + day).value = hoursText((out.profile.hours || {})[day]);
    });
    $("settings-version").textContent = "Version " + out.version;
  }

  function formValue(f) {
    var el = $(inputId(f[0]));
    if (f[1] === "bool") return el.checked;
    var text = el.value.trim();
    if (f[1] === "number") return text === "" ? null : Number(text);
    // An emptied text is null (none), not "", which the server would read as a value.
    return text === "" ? null : text;
  }

  function changes() {
    var set = {};
    FIELDS.forEach(function (f) {
      var value = formValue(f);
      if (JSON.stringify(value) !== JSON.stringify(read(current.profile, f[0]) ?? null)) {
        set[f[0]] = value;
      }
    });
    DAYS.forEach(function (day) {
      var periods = parseHours($("set-hours-" + day).value);
      var before = (current.profile.hours || {})[day] || [];
      if (JSON.stringify(periods) !== JSON.stringify(before)) set["hours." + day] = periods;
    });
    return set;
  }

  function say(text, isError) {
    var el = $("settings-status");
    el.textContent = text;
    el.className = isError ? "error" : "muted";
    el.hidden = !text;
  }

  async function load() {
    say("", false);
    try {
      fill(await window.deskgraphConsole.api("GET", "/v1/admin/profile"));
    } catch (err) {
      say("The settings could not be loaded: " + err.message, true);
    }
  }

  async function save(event) {
    event.preventDefault();
    var set = changes();
    if (!Object.keys(set).length) {
      say("Nothing changed.", false);
      return;
    }
    $("settings-save").disabled = true;
    try {
      var body = { set: set, based_on_version: current.version };
      fill(await window.deskgraphConsole.api("PATCH", "/v1/admin/profile", body));
      say("Saved (version " + current.version + ").", false);
    } catch (err) {
      if (err.code === "version_conflict") {
        say("Someone saved the settings after you opened them. Reload to see theirs, then edit again.", true);
      } else {
        say(err.message, true); // invalid_profile names the field and why; nothing was saved
      }
    } finally {
      $("settings-save").disabled = false;
    }
  }

  function show(open) {
    $("settings").hidden = !open;
    $("desk").hidden = open;
    $("settings-open").setAttribute("aria-pressed", open ? "true" : "false");
    $("settings-open").textContent = open ? "Back to the desk" : "Settings";
    if (open) load();
  }

  document.addEventListener("deskgraph:signed-in", function (event) {
    var me = event.detail || {};
    var admin = (me.permissions || []).indexOf("profile.edit") !== -1;
    $("settings-open").hidden = !admin;
    if (!admin) $("settings").hidden = true;
  });
  document.addEventListener("deskgraph:signed-out", function () {
    $("settings-open").hidden = true;
    $("settings").hidden = true;
  });
  document.addEventListener("DOMContentLoaded", function () {
    $("settings-open").addEventListener("click", function () {
      show($("settings").hidden);
    });
    $("settings-form").addEventListener("submit", save);
    $("settings-reload").addEventListener("click", load);
  });
})();
