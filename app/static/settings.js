// Live preview of a message template: rendered by the server for a sample invoice.
(function () {
  "use strict";
  var form = document.getElementById("template-form");
  if (!form) { return; }
  var shipped = JSON.parse(document.getElementById("shipped-templates").textContent);
  var language = document.getElementById("template-language");
  var tone = document.getElementById("template-tone");
  var source = document.getElementById("template-source");
  var preview = document.getElementById("template-preview");
  var timer = null;

  function show(answer) {
    preview.textContent = "";
    preview.dir = answer.direction || "ltr";
    if (answer.error) {
      var p = document.createElement("p");
      p.className = "field-error";
      p.textContent = answer.error;
      preview.appendChild(p);
      return;
    }
    var subject = document.createElement("strong");
    subject.textContent = answer.subject;
    preview.appendChild(subject);
    preview.appendChild(document.createTextNode("\n\n" + answer.text));
  }

  function render() {
    var body = new FormData(form);
    fetch(form.dataset.previewUrl, {method: "POST", body: body, credentials: "same-origin",
                                    headers: {"X-CSRFToken": body.get("csrf_token")}})
      .then(function (r) { return r.json(); }).then(show)
      .catch(function () { preview.textContent = "Preview unavailable."; });
  }

  function later() { clearTimeout(timer); timer = setTimeout(render, 250); }
  function load() { source.value = shipped[language.value][tone.value]; render(); }

  language.addEventListener("change", load);
  tone.addEventListener("change", load);
  source.addEventListener("input", later);
  form.addEventListener("submit", function (e) { e.preventDefault(); render(); });
  render();
})();
