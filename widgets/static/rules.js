// Questline rules page: live validation. As the instructor types, post the same form to the
// check URL (Accept: application/json) and show the errors per path, with their line. Without
// this script the page works by submit ("Check"). The token travels in the form body.
(function () {
  "use strict";
  var form = document.getElementById("rules-form");
  var box = document.getElementById("rule-errors");
  var area = document.getElementById("document");
  if (!form || !box || !area || !window.fetch || !window.FormData) return;
  var url = form.getAttribute("data-check-url");
  var timer = null;
  var sent = 0;

  function render(errors) {
    var heading = document.createElement("h2");
    heading.id = "rule-errors-heading";
    var list = null;
    if (!errors.length) {
      heading.textContent = box.getAttribute("data-ok-text");
    } else {
      heading.textContent = box.getAttribute("data-errors-text") + " (" + errors.length + ")";
      list = document.createElement("ul");
      list.className = "errors";
      errors.forEach(function (e) {
        var item = document.createElement("li");
        var code = document.createElement("code");
        code.textContent = e.path;
        item.appendChild(code);
        item.appendChild(document.createTextNode(": " + e.message));
        if (e.line) {
          var where = document.createElement("span");
          where.className = "muted";
          where.textContent = " (" + box.getAttribute("data-line-text") + " " + e.line + ")";
          item.appendChild(where);
        }
        list.appendChild(item);
      });
    }
    box.replaceChildren(heading);
    if (list) box.appendChild(list);
    area.setAttribute("aria-invalid", errors.length ? "true" : "false");
  }

  function check() {
    var mine = ++sent;
    fetch(url, {
      method: "POST",
      body: new FormData(form),
      headers: { Accept: "application/json" },
      credentials: "same-origin",
      cache: "no-store"
    })
      .then(function (response) { return response.json(); })
      .then(function (body) {
        if (mine !== sent) return; // an older answer arriving late
        if (body && Array.isArray(body.errors)) render(body.errors);
      })
      .catch(function () { /* offline: the Check button still works */ });
  }

  area.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(check, 400);
  });
})();
