// Live preview of a message template (rendered by the server for a sample invoice), and the
// text in force loaded when the language or tone changes.
(function () {
  "use strict";
  var form = document.getElementById("template-form");
  if (!form) { return; }
  var texts = JSON.parse(document.getElementById("template-texts").textContent);
  var language = document.getElementById("template-language");
  var tone = document.getElementById("template-tone");
  var subject = document.getElementById("template-subject");
  var body = document.getElementById("template-body");
  var state = document.getElementById("template-state");
  var preview = document.getElementById("template-preview");
  var timer = null;

  function show(answer) {
    preview.textContent = "";
    preview.dir = answer.direction || "ltr";
    preview.lang = language.value;  // the text's language, not the page's
    if (answer.error) {
      var p = document.createElement("p");
      p.className = "field-error";
      p.textContent = answer.error;
      preview.appendChild(p);
      return;
    }
    var heading = document.createElement("strong");
    heading.textContent = answer.subject;
    preview.appendChild(heading);
    preview.appendChild(document.createTextNode("\n\n" + answer.text));
  }

  function render() {
    var data = new FormData(form);
    fetch(form.dataset.previewUrl, {method: "POST", body: data, credentials: "same-origin",
                                    headers: {"X-CSRFToken": data.get("csrf_token")}})
      .then(function (r) { return r.json(); }).then(show)
      .catch(function () { preview.textContent = preview.dataset.unavailable || "—"; });
  }

  function later() { clearTimeout(timer); timer = setTimeout(render, 250); }
  function load() {
    var text = texts[language.value][tone.value];
    subject.value = text.subject;
    body.value = text.body;
    body.lang = language.value;
    if (state) { state.textContent = text.custom ? state.dataset.own : state.dataset["default"]; }
    render();
  }

  language.addEventListener("change", load);
  tone.addEventListener("change", load);
  subject.addEventListener("input", later);
  body.addEventListener("input", later);
  render();
})();

// A step sent as the provider's own invoice email is worded by the provider: its template and
// tone are disabled (their values kept by hidden twins) while its channel says so.
(function () {
  "use strict";
  var fields = document.querySelectorAll("[data-follows-channel]");
  var note = document.getElementById("provider-wording");
  function follow(field) {
    var channel = document.getElementById(field.dataset.followsChannel);
    if (!channel || channel.disabled) { return; }
    var byProvider = channel.value === "provider_email";
    field.disabled = byProvider;
    if (byProvider) { field.setAttribute("aria-describedby", "provider-wording"); }
    else { field.removeAttribute("aria-describedby"); }
    var twin = document.querySelector('[data-twin-of="' + field.id + '"]');
    if (twin) { twin.disabled = !byProvider; }
  }
  Array.prototype.forEach.call(fields, function (field) {
    var channel = document.getElementById(field.dataset.followsChannel);
    if (channel) { channel.addEventListener("change", function () { follow(field); }); }
  });
  if (note && !fields.length) { note.hidden = true; }
})();

// A fee rule shows only the fields its kind takes (the server reads only those, too).
(function () {
  "use strict";
  var known = document.getElementById("fee-kind-fields");
  if (!known) { return; }
  var fields = JSON.parse(known.textContent);
  Array.prototype.forEach.call(document.querySelectorAll("[data-fee-row]"), function (row) {
    var kind = row.querySelector("[data-fee-kind]");
    if (!kind) { return; }
    function show() {
      var wanted = fields[kind.value] || [];
      Array.prototype.forEach.call(row.querySelectorAll("[data-fee-field]"), function (box) {
        box.hidden = wanted.indexOf(box.dataset.feeField) < 0;
      });
    }
    kind.addEventListener("change", show);
    show();
  });
})();

// After a refusal the summary of what to correct takes the focus, so it is read first.
(function () {
  "use strict";
  var summary = document.getElementById("errors-summary");
  if (summary) { summary.focus(); }
})();
