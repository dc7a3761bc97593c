// Questline widgets: live updates without a reload. Poll the fragment URL with If-None-Match
// (cache "no-store", so our header goes out as is); a 304 costs the server one render and no
// bytes; a 200 swaps the widget's content in place and tells screen readers politely. Pauses
// while the tab is hidden. No third-party code.
(function () {
  "use strict";
  var root = document.getElementById("widget");
  if (!root || !window.fetch) return;
  var url = root.getAttribute("data-poll-url");
  var every = Math.max(2, parseInt(root.getAttribute("data-poll-seconds"), 10) || 15) * 1000;
  var etag = root.getAttribute("data-etag");
  var status = document.getElementById("live-status");
  var timer = null;

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(poll, every);
  }

  function poll() {
    if (document.hidden) return schedule();
    var headers = etag ? { "If-None-Match": '"' + etag + '"' } : {};
    fetch(url, { headers: headers, credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (response.status !== 200) return null;
        var tag = (response.headers.get("ETag") || "").replace(/^W\//, "").replace(/"/g, "");
        return response.text().then(function (html) { return { tag: tag, html: html }; });
      })
      .then(function (fresh) {
        if (fresh && fresh.tag !== etag) {
          var focused = document.activeElement && document.activeElement.id;
          etag = fresh.tag;
          root.setAttribute("data-etag", etag);
          root.innerHTML = fresh.html;
          root.classList.remove("updated");
          void root.offsetWidth;
          root.classList.add("updated");
          if (focused && document.getElementById(focused)) document.getElementById(focused).focus();
          if (status) status.textContent = status.getAttribute("data-updated-text") || "Updated.";
        }
      })
      .catch(function () { /* offline or server busy: try again next time */ })
      .then(schedule);
  }

  document.addEventListener("visibilitychange", function () { if (!document.hidden) poll(); });
  schedule();
})();
