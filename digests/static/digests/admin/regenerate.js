/* A section's regeneration on the digest page: while it is queued or running, its status URL is
   polled; when it is done the editor is told to reload (the page's version of the issue is now
   old, so its form could not be saved), when it fails the error is shown. Every text from the
   server goes in as text, never as HTML. Each section with a regeneration under way includes
   this file: it runs once. */
(function () {
  "use strict";
  if (window.digestsRegenerateLoaded) return;
  window.digestsRegenerateLoaded = true;

  var POLL_MS = 2000;
  var MAX_FAILURES = 5; // network or server errors in a row before giving up

  // The words come translated from the page (data-text-* of the status box): {name} filled here.
  function words(box, name, values) {
    var text = box.dataset["text" + name] || "";
    Object.keys(values || {}).forEach(function (key) {
      text = text.split("{" + key + "}").join(String(values[key]));
    });
    return text;
  }

  function setText(box, text) {
    var message = box.querySelector(".regeneration-message");
    if (message) message.textContent = text;
  }

  function removeProgress(box) {
    var progress = box.querySelector(".regeneration-progress");
    if (progress) progress.remove();
  }

  function showDone(box, data) {
    removeProgress(box);
    setText(box, words(box, "Ready", { when: data.finished_at_display || words(box, "Now") }));
    var link = document.createElement("a");
    link.href = window.location.href.split("#")[0];
    link.textContent = words(box, "Reload");
    link.addEventListener("click", function (event) {
      event.preventDefault();
      window.location.reload();
    });
    var note = document.createElement("span");
    note.textContent = words(box, "Note");
    box.appendChild(link);
    box.appendChild(note);
    box.dataset.status = "done";
  }

  function showFailed(box, data) {
    removeProgress(box);
    setText(box, words(box, "Failed", { error: data.error || words(box, "NoReason") }));
    box.dataset.status = "failed";
  }

  function showActive(box, data) {
    var seconds = data.elapsed_seconds || 0;
    var name = data.status === "running" ? "Running" : "Waiting";
    setText(box, words(box, name, { seconds: seconds }));
  }

  function poll(box, failures) {
    fetch(box.dataset.statusUrl, {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (data) {
        if (data.status === "done") return showDone(box, data);
        if (data.status === "failed") return showFailed(box, data);
        showActive(box, data);
        setTimeout(function () { poll(box, 0); }, POLL_MS);
      })
      .catch(function () {
        if (failures + 1 >= MAX_FAILURES) {
          setText(box, words(box, "Unreadable"));
          removeProgress(box);
          return;
        }
        setTimeout(function () { poll(box, failures + 1); }, POLL_MS * (failures + 2));
      });
  }

  function attach(box) {
    if (box.dataset.attached || !box.dataset.statusUrl) return;
    box.dataset.attached = "1";
    poll(box, 0);
  }

  function attachAll() {
    document.querySelectorAll(".regeneration-status[data-status-url]").forEach(attach);
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", attachAll);
  } else {
    attachAll();
  }
})();
