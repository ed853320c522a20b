/* pixeltrack */
(function (w, d) {
  try {
    var s = d.currentScript, a = function (k) { return s.getAttribute("data-" + k) }, site = a("site");
    var api = a("api") || s.src.replace(/\/t\.js.*$/, "/e"), nav = w.navigator, hist = w.history, loc = w.location;
    var q = w.pixeltrack && w.pixeltrack.q, consent, url, ref = d.referrer, depth, shown, vis, sent, marks;
    var on = function (t, e, f) { t.addEventListener(e, function (x) { try { f(x) } catch (_) {} }, true) };
    var api_ = function () {};
    w.pixeltrack = api_.consent = api_;
    if (!site || (nav.globalPrivacyControl && a("gpc") != "ignore")) return;
    var send = function (o) {
      o.s = site; o.u = o.u || url;
      if (consent != null) o.cs = consent;
      var b = JSON.stringify(o);
      if (!(nav.sendBeacon && nav.sendBeacon(api, b))) {
        fetch(api, { method: "POST", body: b, keepalive: true }).catch(function () {
          new Image().src = api.replace(/\/e$/, "/p.gif") + "?s=" + site + "&e=" + encodeURIComponent(o.n) + "&u=" + encodeURIComponent(o.u);
        });
      }
    };
    var scroll = function () {
      var e = d.documentElement, h = e.scrollHeight - w.innerHeight, p = h > 0 ? Math.round(100 * w.scrollY / h) : 100;
      if (h <= 0 && d.readyState != "complete") return;
      p = p > 100 ? 100 : p;
      if (p > depth) {
        depth = p;
        if (marks) [25, 50, 75, 100].forEach(function (m) {
          if (p >= m && marks.indexOf(m) < 0) { marks.push(m); send({ n: "scroll", p: { depth: "" + m } }) }
        });
      }
    };
    var flush = function () {
      if (vis) shown += Date.now() - vis, vis = 0;
      if (!sent) { sent = 1; send({ n: "engagement", sd: depth, em: shown }) }
    };
    var view = function () {
      if (url == loc.href) return;
      if (url) flush(), ref = url;
      url = loc.href; depth = 0; shown = 0; sent = 0; vis = d.hidden ? 0 : Date.now();
      marks = a("scroll") == "milestones" && [];
      send({ n: "pageview", r: ref, t: d.title, w: screen.width });
      scroll();
    };
    api_ = w.pixeltrack = function (n, o) {
      try { if (typeof n == "string") send(Object.assign({}, o, { n: n })) } catch (_) {}
    };
    api_.consent = function (b) { consent = !!b };
    ["pushState", "replaceState"].forEach(function (k) {
      var f = hist[k];
      hist[k] = function () { var r = f.apply(this, arguments); try { view() } catch (_) {} return r };
    });
    on(w, "popstate", view);
    if (a("spa") == "hash") on(w, "hashchange", view);
    on(w, "scroll", scroll);
    on(w, "load", scroll);
    on(d, "visibilitychange", function () { d.hidden ? flush() : (vis = Date.now()) });
    on(w, "pagehide", flush);
    on(d, "click", function (e) {
      var t = e.target, x = t.closest("[data-pixeltrack-event]"), l = t.closest("a[href]"), p = {}, k;
      if (x) {
        for (k in x.dataset) if (k.indexOf("pixeltrackProp") == 0) p[k.slice(14).toLowerCase()] = x.dataset[k];
        send({ n: x.getAttribute("data-pixeltrack-event"), p: p });
      }
      if (!l) return;
      if (/\.(pdf|zip|dmg|exe|msi|csv|xlsx?|docx?|pptx?|mp3|mp4|gz|tgz|rar)$/i.test(l.pathname)) send({ n: "download", p: { url: l.href } });
      else if (l.host != loc.host && /^https?:/.test(l.protocol) && a("outbound") != "off") send({ n: "outbound", p: { url: l.href } });
    });
    view();
    (q || []).forEach(function (c) { api_.apply(0, c) });
  } catch (_) {}
})(window, document);
