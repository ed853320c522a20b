/* pixeltrack dashboard: the only script (CSP: script-src 'self'). The pages work
   without it; it refreshes the realtime panel. Data goes in with textContent only. */
(function () {
  "use strict";
  var panel = document.getElementById("realtime");
  if (!panel || !window.fetch) return;
  var src = panel.getAttribute("data-src");
  function set(name, value) {
    var el = panel.querySelector('[data-rt="' + name + '"]');
    if (el) el.textContent = String(value);
  }
  function refresh() {
    fetch(src, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (d) {
        if (!d) return;
        set("visitors", d.visitors);
        set("pageviews", d.pageviews);
        var list = panel.querySelector('[data-rt="pages"]');
        if (!list) return;
        while (list.firstChild) list.removeChild(list.firstChild);
        (d.pages || []).forEach(function (p) {
          var li = document.createElement("li");
          var name = document.createElement("span");
          name.textContent = p.value;
          var n = document.createElement("span");
          n.className = "muted";
          n.textContent = " " + p.pageviews;
          li.appendChild(name);
          li.appendChild(n);
          list.appendChild(li);
        });
      })
      .catch(function () {});
  }
  setInterval(refresh, 30000);
})();
