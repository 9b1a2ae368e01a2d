/* The /ops page keeps itself up to date: every few seconds it fetches
   /ops/data.json and rewrites the table bodies and the problem list in place.
   No reload, so keyboard focus and the reading position stay where they are.
   Only the problem list is a live region, and it is rewritten only when the
   problems change, so a screen reader is not interrupted every refresh. */
(function () {
  "use strict";

  var root = document.getElementById("ops");
  if (!root || !window.fetch) { return; }
  var source = root.getAttribute("data-source");
  var every = Number(root.getAttribute("data-interval") || 5) * 1000;
  var pauseButton = document.getElementById("ops-pause");
  var updated = document.getElementById("ops-updated");
  var note = document.getElementById("ops-refresh-note");
  var alertsBox = document.getElementById("ops-alerts");
  var paused = false;
  var timer = null;
  var lastAlerts = null;   // the problems as last shown, to announce only changes
  var failing = false;
  var refreshes = 0;

  function el(name, attrs, text) {
    var node = document.createElement(name);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  function cellNode(cell, column, first) {
    var node = first ? el("th", { scope: "row" }) : el("td", column.numeric ? { "class": "ops-numeric" } : {});
    if (cell.tag) {
      node.appendChild(el("strong", { "class": "ops-tag ops-tag--" + cell.tag }, cell.text));
    } else {
      node.textContent = cell.text;
    }
    return node;
  }

  function renderTable(t) {
    var table = document.getElementById("table-" + t.id);
    if (!table) { return; }
    var body = el("tbody");
    t.rows.forEach(function (row) {
      var tr = el("tr");
      row.forEach(function (cell, i) { tr.appendChild(cellNode(cell, t.columns[i], i === 0)); });
      body.appendChild(tr);
    });
    if (!t.rows.length) {
      var tr = el("tr");
      tr.appendChild(el("td", { colspan: String(t.columns.length) }, t.empty));
      body.appendChild(tr);
    }
    table.replaceChild(body, table.tBodies[0]);
  }

  function renderAlerts(alerts) {
    var key = JSON.stringify(alerts);
    if (key === lastAlerts) { return; }   // unchanged: say nothing to screen readers
    lastAlerts = key;
    var box = document.createDocumentFragment();
    if (!alerts.length) {
      box.appendChild(el("p", { "class": "ops-ok" }, "No problems."));
    } else {
      var list = el("ul", { "class": "ops-alerts" });
      alerts.forEach(function (a) {
        var li = el("li", { "class": "ops-alert ops-alert--" + a.level });
        li.appendChild(el("strong", { "class": "ops-tag ops-tag--" + (a.level === "critical" ? "red" : "yellow") }, a.level.charAt(0).toUpperCase() + a.level.slice(1)));
        li.appendChild(document.createTextNode(" " + a.text));
        list.appendChild(li);
      });
      box.appendChild(list);
    }
    alertsBox.replaceChildren(box);
  }

  function showTime(iso) {
    var when = new Date(iso);
    updated.setAttribute("datetime", iso);
    updated.textContent = when.toLocaleTimeString("en-GB");
  }

  function render(data) {
    data.tables.forEach(renderTable);
    renderAlerts(data.alerts);
    showTime(data.generated_at);
    failing = false;
    refreshes += 1;
    root.setAttribute("data-refreshes", String(refreshes));
  }

  function problem(text) {
    if (failing) { return; }
    failing = true;
    lastAlerts = null;
    renderAlerts([{ level: "critical", text: text }]);
  }

  function refresh() {
    timer = null;
    fetch(source, { credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" } })
      .then(function (resp) {
        if (resp.status === 401) {
          problem("You have been signed out. Reload the page to sign in again.");
          paused = true;
          return null;
        }
        if (!resp.ok) { throw new Error("HTTP " + resp.status); }
        return resp.json();
      })
      .then(function (data) { if (data) { render(data); } })
      .catch(function (err) {
        problem("Could not fetch new figures (" + err.message + "); the figures shown are from " + updated.textContent + ". Still trying.");
      })
      .then(schedule);
  }

  function schedule() {
    if (!paused && timer === null) { timer = window.setTimeout(refresh, every); }
  }

  function setPaused(value) {
    paused = value;
    pauseButton.setAttribute("aria-pressed", String(value));
    pauseButton.textContent = value ? "Resume updates" : "Pause updates";
    note.textContent = value ? "Updates are paused." : "Updates every " + every / 1000 + " seconds.";
    if (value && timer !== null) { window.clearTimeout(timer); timer = null; }
    if (!value) { refresh(); }
  }

  pauseButton.hidden = false;
  pauseButton.addEventListener("click", function () { setPaused(!paused); });
  note.textContent = "Updates every " + every / 1000 + " seconds.";
  lastAlerts = JSON.stringify(JSON.parse(root.getAttribute("data-alerts") || "[]"));
  schedule();
}());
