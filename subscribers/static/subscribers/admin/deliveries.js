/* The deliveries panel of an issue being sent: every few seconds it fetches itself again from
   the admin (the panel's data-panel-url), so an editor watching sees the counts move. The
   server stops asking for refreshes (no data-refresh-ms) once the send is over. */
(function () {
  "use strict";
  var PANEL_ID = "deliveries-panel";
  var MAX_FAILURES = 10;
  var failures = 0;

  function later(panel) {
    var every = Number(panel.getAttribute("data-refresh-ms") || 0);
    if (every > 0) window.setTimeout(refresh, every);
  }

  function busy(panel) {
    // Someone about to press "Resend": do not swap the button out from under them.
    var active = document.activeElement;
    return active && active !== panel && panel.contains(active);
  }

  function refresh() {
    var panel = document.getElementById(PANEL_ID);
    if (!panel) return;
    if (document.hidden || busy(panel)) {
      later(panel);
      return;
    }
    fetch(panel.getAttribute("data-panel-url"), {
      credentials: "same-origin",
      headers: { "X-Requested-With": "XMLHttpRequest" },
    })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.text();
      })
      .then(function (html) {
        var page = new DOMParser().parseFromString(html, "text/html");
        var fresh = page.getElementById(PANEL_ID);
        if (!fresh) return;
        failures = 0;
        fresh = document.importNode(fresh, true);
        panel.replaceWith(fresh);
        later(fresh);
      })
      .catch(function () {
        failures += 1;
        if (failures < MAX_FAILURES) later(panel); // a restart or a lost connection: try again
      });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var panel = document.getElementById(PANEL_ID);
    if (panel) later(panel);
  });
})();
