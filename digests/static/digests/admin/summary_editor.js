/* The summary editor's live preview: after a pause in typing, the text is sent to the admin's
   preview endpoint and the sanitised HTML it returns replaces the preview. */
(function () {
  "use strict";
  var DELAY_MS = 400;

  function csrfToken() {
    var field = document.querySelector("input[name=csrfmiddlewaretoken]");
    return field ? field.value : "";
  }

  function attach(editor) {
    if (editor.dataset.attached) return;
    editor.dataset.attached = "1";
    var textarea = editor.querySelector("textarea");
    var preview = editor.querySelector(".summary-preview");
    var url = editor.dataset.previewUrl;
    if (!textarea || !preview || !url) return;
    var timer = null;
    var sent = 0;
    textarea.addEventListener("input", function () {
      preview.classList.add("is-stale");
      clearTimeout(timer);
      timer = setTimeout(function () {
        var ticket = ++sent;
        var body = new URLSearchParams({ text: textarea.value });
        fetch(url, {
          method: "POST",
          headers: { "X-CSRFToken": csrfToken() },
          body: body,
          credentials: "same-origin",
        })
          .then(function (response) { return response.json(); })
          .then(function (data) {
            if (ticket !== sent) return; // a newer request is on its way
            if (data.html !== undefined) preview.innerHTML = data.html; // sanitised server-side
            preview.classList.remove("is-stale");
          })
          .catch(function () { /* the preview stays as it was, marked stale */ });
      }, DELAY_MS);
    });
  }

  function attachAll() {
    document.querySelectorAll(".summary-editor").forEach(attach);
  }
  document.addEventListener("DOMContentLoaded", attachAll);
  document.addEventListener("formset:added", attachAll);
})();
